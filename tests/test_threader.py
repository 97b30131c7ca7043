"""Threading helpers that need no database: subject normalisation, the ticket tag, the
Thread-Index of our replies, and who may join a ticket found (admit)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from mailer.decide.threader import (
    Admission,
    ThreadMatch,
    admit,
    filetime,
    normalise_subject,
    outlook_hints,
    outlook_reply_headers,
    thread_index_child,
    ticket_tag,
)
from storage.tickets import TicketRef

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


# --- Thread-Index of our replies ([MS-OXOMSG] 2.2.1.3) ------------------------------------------

_T0 = datetime(2026, 11, 23, 1, 55, tzinfo=UTC)
# A conversation's header as Outlook writes it: 0x01, the 40 high bits of the FILETIME, a GUID.
_HEADER = bytes([1]) + (filetime(_T0) >> 24).to_bytes(5, "big") + bytes.fromhex("5a1f" * 8)


def _level(child: bytes) -> tuple[int, int, int]:
    """The last response level of a Thread-Index: (delta code, 31-bit time delta, random byte)."""
    word = int.from_bytes(child[-5:-1], "big")
    return word >> 31, word & 0x7FFF_FFFF, child[-1]


def test_thread_index_child_of_a_new_conversation() -> None:
    """A reply to a mail with a 22-byte Thread-Index is 27 bytes: the parent's bytes, then one
    response level whose time delta is the time since the header's, in units of 2^18 * 100 ns."""
    now = _T0 + timedelta(minutes=5)
    child = thread_index_child(_HEADER, now, 0xA7)
    assert child is not None and len(child) == 27 and child[:22] == _HEADER
    code, delta, rand = _level(child)
    header_time = int.from_bytes(_HEADER[1:6], "big") << 24
    assert (code, rand) == (0, 0xA7)
    assert delta == (filetime(now) - header_time) >> 18
    assert abs((delta << 18) / 10_000_000 - (now - _T0).total_seconds()) < 2  # within the header's rounding


def test_thread_index_child_of_a_reply_keeps_every_level() -> None:
    """A reply to a reply (27 bytes) is 32 bytes and starts with all of its parent's."""
    first = thread_index_child(_HEADER, _T0 + timedelta(minutes=5), 1)
    assert first is not None
    second = thread_index_child(first, _T0 + timedelta(hours=2), 2)
    assert second is not None and len(second) == 32 and second[:27] == first


def test_thread_index_child_years_later_uses_the_coarse_code() -> None:
    """A delta of 2^49 * 100 ns (about 1.8 years) or more is written with delta code 1, in
    units of 2^23 * 100 ns."""
    now = _T0 + timedelta(days=800)
    child = thread_index_child(_HEADER, now, 0)
    assert child is not None
    code, delta, _ = _level(child)
    header_time = int.from_bytes(_HEADER[1:6], "big") << 24
    assert (code, delta) == (1, (filetime(now) - header_time) >> 23)


def test_thread_index_child_of_odd_parents() -> None:
    """A header from a clock ahead of ours gives a zero delta; stray bytes after the last whole
    level are dropped; fewer than 22 bytes is no Thread-Index at all."""
    early = thread_index_child(_HEADER, _T0 - timedelta(hours=1), 0)
    assert early is not None and _level(early)[:2] == (0, 0)
    stray = thread_index_child(_HEADER + b"\x00\x01", _T0, 0)
    assert stray is not None and len(stray) == 27 and stray[:22] == _HEADER
    assert thread_index_child(_HEADER[:21], _T0, 0) is None


def test_reply_headers_only_for_a_mail_with_a_thread_index() -> None:
    """Thread-Topic (theirs, else their subject) and a base64 child Thread-Index for a mail from
    Outlook; nothing for a mail without a Thread-Index."""
    hints = outlook_hints(
        b"Subject: RE: Data\r\nThread-Topic: Data\r\nThread-Index: "
        + base64.b64encode(_HEADER)
        + b"\r\n\r\nx"
    )
    headers = dict(outlook_reply_headers(hints, "RE: Data", _T0, 9))
    assert headers["Thread-Topic"] == "Data"
    child = base64.b64decode(headers["Thread-Index"], validate=True)
    assert len(child) == 27 and child[:22] == _HEADER
    no_topic = outlook_hints(b"Subject: Data\r\nThread-Index: " + base64.b64encode(_HEADER) + b"\r\n\r\nx")
    assert dict(outlook_reply_headers(no_topic, "Data  IPM", _T0, 9))["Thread-Topic"] == "Data IPM"
    assert outlook_reply_headers(outlook_hints(b"Subject: Data\r\n\r\nx"), "Data", _T0, 9) == []


RINA, STRANGER = "rina@example.com", "mallory@example.net"
_TICKET = TicketRef(1, "PST-3514-2026-00001", "open", RINA)
ADMIT = [
    # (how found, through our own Message-ID, sender, automatic, admission)
    ("references", True, STRANGER, False, Admission.JOIN),  # our ack forwarded to a colleague
    ("references", True, STRANGER, True, Admission.JOIN),  # a bounce of our ack
    ("references", False, RINA, False, Admission.JOIN),  # the requester citing her own mail
    ("references", False, STRANGER, False, Admission.NEW_LINKED),  # her Message-ID, however got
    ("references", False, STRANGER, True, Admission.RECORD),
    ("subject_tag", False, STRANGER, False, Admission.NEW_LINKED),  # a sequential ticket number
    ("subject_tag", False, RINA, False, Admission.JOIN),
    ("thread_index", False, STRANGER, False, Admission.NEW_LINKED),  # Thread-Index is copied freely
    ("thread_index", False, STRANGER, True, Admission.RECORD),
    ("same_sender_subject", False, STRANGER, False, Admission.NEW_LINKED),
    ("same_sender_subject", False, RINA, False, Admission.JOIN),
]


@pytest.mark.parametrize(("how", "trusted", "sender", "automatic", "expected"), ADMIT)
def test_admit_lets_in_participants_and_holders_of_our_message_ids(
    how: str, trusted: bool, sender: str, automatic: bool, expected: Admission
) -> None:
    """Only a participant or a match through the desk's own Message-ID joins; a stranger's mail
    opens a linked ticket (automatic mail: recorded)."""
    assert admit(ThreadMatch(_TICKET, how, trusted), sender, {RINA: "requester"}, automatic) is expected
