"""The reply trimmer: what a person wrote, without quoted history and phone signatures."""

from __future__ import annotations

import pytest

from mailer.decide.trim import trim
from tests.conftest import SHARED

CORPUS = SHARED / "corpora" / "email_reply_trimmer"


@pytest.mark.shared
@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no corpus at {CORPUS} (clone without ../shared)")
def test_email_reply_trimmer_corpus_at_least_90_percent() -> None:
    """The visible text matches discourse's expected `trimmed/` text on at least 90% of its bodies."""
    names = sorted(p.name for p in (CORPUS / "emails").glob("*.txt"))
    assert len(names) == 64
    matched = [
        n
        for n in names
        if trim((CORPUS / "emails" / n).read_text(encoding="utf-8"))[0]
        == (CORPUS / "trimmed" / n).read_text(encoding="utf-8").strip()
    ]
    share = len(matched) / len(names)
    print(f"email_reply_trimmer: {len(matched)}/{len(names)} = {share:.1%}")
    assert share >= 0.90, sorted(set(names) - set(matched))


CASES = [
    (
        "gmail_indonesian",
        "Baik, terima kasih. Saya tunggu datanya.\n\n"
        "Pada Sen, 23 Nov 2026 pukul 09.12 BPS Kabupaten Pasuruan <bps3514@bps.go.id>\nmenulis:\n\n"
        "> Yth. Rina,\n> Permintaan Anda telah kami terima.\n",
        "Baik, terima kasih. Saya tunggu datanya.",
    ),
    (
        "gmail_indonesian_tanggal",
        "Mohon dikirim dalam format Excel.\n\n"
        "Pada tanggal Sel, 24 Nov 2026 10.05, Petugas PST <pst3514@bps.go.id> menulis:\n> Data terlampir.\n",
        "Mohon dikirim dalam format Excel.",
    ),
    (
        "outlook_indonesian",
        "Terima kasih atas jawabannya.\n\nSalam,\nBudi\n\n"
        "________________________________\n"
        "Dari: BPS Kota Kediri <bps3571@bps.go.id>\nDikirim: Senin, 23 November 2026 10:00\n"
        "Kepada: budi@example.com\nSubjek: Re: Data inflasi [PST-3571-2026-00001]\n\nYth. Budi, ...\n",
        "Terima kasih atas jawabannya.\n\nSalam,\nBudi",
    ),
    (
        "outlook_without_delimiter",
        "Sudah saya terima.\n\nDari: Petugas PST <pst3576@bps.go.id>\nTerkirim: 24 November 2026 9:00\n"
        "Kepada: Ani <ani@example.com>\nPerihal: Data IPM\n\nBerikut datanya.\n",
        "Sudah saya terima.",
    ),
    (
        "iphone_signature",
        "Boleh minta data per desa juga?\n\nDikirim dari iPhone saya\n",
        "Boleh minta data per desa juga?",
    ),
    (
        "yahoo_android_signature",
        "Siap pak.\n\nDikirim dari Yahoo Mail di Android\n",
        "Siap pak.",
    ),
    (
        "english_on_wrote",
        "Thanks, that helps.\n\nOn Mon, 23 Nov 2026 at 09:00, BPS <bps3514@bps.go.id> wrote:\n> Dear John,\n",
        "Thanks, that helps.",
    ),
    (
        "no_quote_at_all",
        "Selamat siang,\nmohon data kemiskinan 2024.\n",
        "Selamat siang,\nmohon data kemiskinan 2024.",
    ),
    ("empty", "  \n", ""),
]


@pytest.mark.parametrize(("name", "body", "expected"), CASES, ids=[c[0] for c in CASES])
def test_reply_shapes_of_indonesian_and_other_clients(name: str, body: str, expected: str) -> None:
    """Quoted history and phone signatures of the clients the public uses are trimmed."""
    assert trim(body)[0] == expected


def test_elided_part_keeps_the_quoted_history() -> None:
    """What is cut is returned too, so nothing a person sent is lost."""
    visible, elided = trim("Oke.\n\nPada Sen, 23 Nov 2026 09.00 Ani <ani@example.com> menulis:\n> Data A\n")
    assert visible == "Oke."
    assert "> Data A" in elided


def test_code_blocks_are_never_trimmed() -> None:
    """Lines inside a ``` block are kept even when they look like delimiters."""
    body = "Skrip saya:\n\n```\n# ----\n--\n```\n\nTerima kasih."
    assert trim(body)[0] == body
