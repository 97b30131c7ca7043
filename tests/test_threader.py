"""Threading helpers that need no database: subject normalisation and the ticket tag."""

from __future__ import annotations

import pytest

from mailer.threader import normalise_subject, ticket_tag

SUBJECTS = [
    ("Data IPM 2024", "data ipm 2024"),
    ("Re: Data IPM 2024", "data ipm 2024"),
    ("RE: RE: Data IPM 2024", "data ipm 2024"),
    ("Fwd: Fw: Data IPM 2024", "data ipm 2024"),
    ("AW: WG: Data IPM 2024", "data ipm 2024"),
    ("TR: Data IPM 2024", "data ipm 2024"),
    ("Balas: Data IPM 2024", "data ipm 2024"),
    ("Bls: Trs: Data IPM 2024", "data ipm 2024"),
    ("Teruskan: Data IPM 2024", "data ipm 2024"),
    ("[EXTERNAL] RE: Data IPM 2024", "data ipm 2024"),
    ("RE: [EXTERNAL] Re: Data IPM 2024", "data ipm 2024"),
    ("Re[2]: Data IPM 2024", "data ipm 2024"),
    ("RE(3): Data IPM 2024", "data ipm 2024"),
    ("[Fwd: Data IPM 2024]", "data ipm 2024"),
    ("Re: Data IPM 2024 [PST-3514-2026-00042]", "data ipm 2024"),
    ("  re :   Data   IPM 2024 ", "data ipm 2024"),
    ("Reklamasi pantai", "reklamasi pantai"),  # a word that starts like a prefix stays
    ("Trend inflasi", "trend inflasi"),
    ("Balasan data", "balasan data"),
    ("", ""),
    ("Re: (tanpa subjek)", ""),  # the placeholder of a mail without subject names no conversation
    ("RE: Re: (no subject)", ""),
    ("Balas: (Tanpa Subjek)", ""),
]


@pytest.mark.parametrize(("subject", "expected"), SUBJECTS)
def test_normalise_subject_strips_reply_and_forward_prefixes(subject: str, expected: str) -> None:
    """Client prefixes in many languages, counted and bracketed forms and banners are stripped."""
    assert normalise_subject(subject) == expected


def test_ticket_tag_only_of_the_office() -> None:
    """The subject tag is read only when it belongs to the office receiving the mail."""
    subject = "Re: data [PST-3571-2026-00007] [PST-3514-2026-00042]"
    assert ticket_tag(subject, "3514") == "PST-3514-2026-00042"
    assert ticket_tag(subject, "8205") is None
