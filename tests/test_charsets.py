"""Charsets as real clients get them wrong: bytes written by Outlook, old webmail and phones,
with the labels they really put on them."""

from __future__ import annotations

import pytest

from mailer.intake.decode import decode_text
from mailer.intake.parse import parse


def _mail(headers: bytes, body: bytes) -> bytes:
    return b"From: a@example.com\r\nMIME-Version: 1.0\r\n" + headers + b"\r\n\r\n" + body


BODIES = [
    (
        "windows-1252 labelled iso-8859-1 (Outlook)",
        b"text/plain; charset=iso-8859-1",
        "Mohon data \u201cIPM\u201d 2020\u20132024 \u2026 biaya \u20ac 0".encode("cp1252"),
        "Mohon data \u201cIPM\u201d 2020\u20132024 \u2026 biaya \u20ac 0",
    ),
    (
        "windows-1252 labelled us-ascii",
        b"text/plain; charset=us-ascii",
        b"Terima kasih atas \x93tabel\x94 \x96 sangat membantu",
        "Terima kasih atas \u201ctabel\u201d \u2013 sangat membantu",
    ),
    (
        "windows-1252 undefined byte kept, not replaced",
        b"text/plain; charset=windows-1252",
        b"Kode \x81 tetap",
        "Kode \x81 tetap",
    ),
    (
        "utf-8 labelled iso-8859-1",
        b"text/plain; charset=iso-8859-1",
        "Jl. Sudirman \u2013 Kantor BPS \u00a9 2024, Bapak Jos\u00e9".encode(),
        "Jl. Sudirman \u2013 Kantor BPS \u00a9 2024, Bapak Jos\u00e9",
    ),
    (
        "utf-8 labelled windows-1252",
        b'text/plain; charset="windows-1252"',
        "Data penduduk \u2013 kecamatan Bangil".encode(),
        "Data penduduk \u2013 kecamatan Bangil",
    ),
    (
        "utf-8 with one latin-1 byte pasted in",
        b"text/plain; charset=utf-8",
        "Data \u2013 kecamatan ".encode() + b"Caf\xe9 Sentosa",
        "Data \u2013 kecamatan Caf\u00e9 Sentosa",
    ),
    (
        "utf-8 cut in the middle of a character",
        b"text/plain; charset=utf-8",
        "Terima kasih \u2013 ".encode() + "\u2013".encode()[:2],
        "Terima kasih \u2013 \u00e2\u20ac",
    ),
    (
        "no charset, windows-1252 bytes",
        b"text/plain",
        b"Salam \x93hangat\x94",
        "Salam \u201changat\u201d",
    ),
    (
        "Outlook's Korean label",
        b"text/plain; charset=ks_c_5601-1987",
        "\uc548\ub155\ud558\uc138\uc694 BPS".encode("cp949"),
        "\uc548\ub155\ud558\uc138\uc694 BPS",
    ),
    (
        "Thai label windows-874",
        b"text/plain; charset=windows-874",
        "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35".encode("cp874"),
        "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35",
    ),
    ("x-mac-roman", b"text/plain; charset=x-mac-roman", "Caf\u00e9".encode("mac_roman"), "Caf\u00e9"),
    ("cp-1252 spelled with a dash", b"text/plain; charset=cp-1252", b"\x93ok\x94", "\u201cok\u201d"),
    (
        "Hebrew iso-8859-8-i",
        b"text/plain; charset=iso-8859-8-i",
        "\u05e9\u05dc\u05d5\u05dd".encode("iso8859_8"),
        "\u05e9\u05dc\u05d5\u05dd",
    ),
    (
        "unknown label, utf-8 bytes",
        b"text/plain; charset=x-unknown-8bit",
        "Kab. Pasuruan \u2013 2024".encode(),
        "Kab. Pasuruan \u2013 2024",
    ),
    (
        "a codec that is not a charset is not used",
        b"text/plain; charset=unicode-escape",
        b"Berkas di C:\\\\new\\\\tabel.xlsx \\u2013 lihat",
        "Berkas di C:\\\\new\\\\tabel.xlsx \\u2013 lihat",
    ),
    (
        "HTML without a charset parameter but with a meta charset",
        b"text/html",
        b'<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1252"></head>'
        b"<body><p>\x93Statistik Daerah\x94 \x96 2024</p></body></html>",
        "\u201cStatistik Daerah\u201d \u2013 2024",
    ),
]


@pytest.mark.parametrize(
    ("content_type", "body", "text"), [c[1:] for c in BODIES], ids=[c[0] for c in BODIES]
)
def test_body_decodes_right_whatever_the_label_says(content_type: bytes, body: bytes, text: str) -> None:
    """Each body comes out as the text its writer typed, whatever charset label it carries."""
    mail = parse(_mail(b"Content-Type: " + content_type + b"\r\nContent-Transfer-Encoding: 8bit", body))
    assert mail.text.strip() == text


def test_a_mislabelled_body_is_reported_in_the_defects() -> None:
    """UTF-8 labelled iso-8859-1 is read right and the wrong label is noted."""
    mail = parse(_mail(b"Content-Type: text/plain; charset=iso-8859-1", "Jos\u00e9".encode()))
    assert mail.text.strip() == "Jos\u00e9"
    assert "bad charset 'iso-8859-1': text/plain" in mail.defects


def test_real_latin1_text_is_not_taken_for_utf8() -> None:
    """Latin-1 bytes that are not valid UTF-8 keep their label's reading, and count as clean."""
    assert decode_text("Formul\u00e1rio de solicita\u00e7\u00e3o".encode("latin-1"), "iso-8859-1") == (
        "Formul\u00e1rio de solicita\u00e7\u00e3o",
        True,
    )


def test_parts_in_different_charsets_each_decode_with_their_own() -> None:
    """A multipart mail whose parts use different charsets (a forwarded Outlook note)."""
    body = (
        b'--b\r\nContent-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'
        + "Teruskan \u2013 dari kantor".encode()
        + b"\r\n--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: "
        b"quoted-printable\r\nContent-Disposition: inline\r\n\r\n=93Tabel 3=94 =96 Kecamatan=85\r\n--b--\r\n"
    )
    mail = parse(_mail(b'Content-Type: multipart/mixed; boundary="b"', body))
    assert mail.text.split("\n") == [
        "Teruskan \u2013 dari kantor",
        "\u201cTabel 3\u201d \u2013 Kecamatan\u2026",
    ]


RAW_HEADERS = [
    ("raw utf-8 name", "Dwi Ananta \u2013 BPS".encode(), "Dwi Ananta \u2013 BPS"),
    ("raw windows-1252 name", b"Jos\xe9 \x93Joe\x94 Sitompul", "Jos\u00e9 \u201cJoe\u201d Sitompul"),
    ("raw utf-8 with one latin-1 byte", "Sri \u2013 ".encode() + b"Ren\xe9", "Sri \u2013 Ren\u00e9"),
]


@pytest.mark.parametrize(("raw", "name"), [c[1:] for c in RAW_HEADERS], ids=[c[0] for c in RAW_HEADERS])
def test_raw_8bit_display_names_and_subjects_decode(raw: bytes, name: str) -> None:
    """Raw 8-bit bytes in From and Subject (no RFC 2047) read as UTF-8, stray bytes as windows-1252."""
    mail = parse(b"From: " + raw + b" <jose@example.com>\r\nSubject: " + raw + b"\r\n\r\nIsi.\r\n")
    assert mail.from_ is not None
    assert (mail.from_.name, mail.from_.email, mail.subject) == (name, "jose@example.com", name)


def test_unknown_charset_in_an_encoded_word() -> None:
    """An RFC 2047 word in an unknown charset still decodes (UTF-8, else windows-1252)."""
    mail = parse(b"From: a@example.com\r\nSubject: =?x-unknown?Q?Tabel_=93A=94?=\r\n\r\nIsi.\r\n")
    assert mail.subject == "Tabel \u201cA\u201d"


NUL_MAIL = (
    b"From: =?utf-8?q?Rina=00W?= <rina@example.com>\r\nSubject: Data\x00 =?utf-8?q?a=00b?=\r\n"
    b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nIsi\x00teks\r\n"
    b'--b\r\nContent-Type: application/pdf; name="a\x00b.pdf"\r\n\r\nAAAA\r\n--b--\r\n'
)


def test_nul_characters_never_reach_the_text() -> None:
    """NUL characters (which PostgreSQL cannot store in text) come out as U+FFFD everywhere."""
    mail = parse(NUL_MAIL)
    assert mail.from_ is not None
    values = (mail.text, mail.subject, mail.from_.name, *(a.filename for a in mail.attachments))
    assert values == ("Isi\ufffdteks", "Data\ufffd a\ufffdb", "Rina\ufffdW", "a\ufffdb.pdf")


def test_utf7_lone_surrogates_do_not_reach_the_text() -> None:
    """A UTF-7 body or subject that encodes half a surrogate pair (which no database can store)
    gets U+FFFD there."""
    mail = parse(
        b"From: a@example.com\r\nSubject: =?utf-7?q?a+2AA-b?=\r\n"
        b"Content-Type: text/plain; charset=utf-7\r\n\r\nData +AOk- x+2AA-y\r\n"
    )
    assert (mail.subject, mail.text.strip()) == ("a\ufffdb", "Data \u00e9 x\ufffdy")
