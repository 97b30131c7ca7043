"""Attachments: safe names, the size cap, hashes, inline images left out, winmail.dat unpacked,
and what the store step writes (on a real SQLite database, without mail servers)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import itertools
import struct
from pathlib import Path

import compressed_rtf
import pytest
from sqlalchemy import Engine, select

from mailer.clock import FrozenClock
from mailer.delivery.render import Renderer
from mailer.errors import ConfigError
from mailer.intake.attachments import (
    MAX_NAME_BYTES,
    MAX_NAME_CHARS,
    attachment_rows,
    safe_filename,
    unique_names,
)
from mailer.intake.parse import parse
from mailer.model import Attachment, FetchedMail, Outcome
from mailer.pipeline.driver import Pipeline
from mailer.settings import AttachmentSettings, Settings, load_settings
from storage import db
from storage.tables import AttachmentRow, MessageRow
from tests.conftest import office_env
from tests.test_content import show
from tests.test_settings import write_settings

_uids = itertools.count(1)

SAFE_NAMES = [
    ("plain", "Surat Permohonan Data.pdf", "Surat Permohonan Data.pdf"),
    (
        "Indonesian and non-ASCII kept",
        "Surat Permohonan – Dinas Sosial (2024).pdf",
        "Surat Permohonan – Dinas Sosial (2024).pdf",
    ),
    ("unix path", "../../etc/passwd", "passwd"),
    ("windows path", "C:\\Users\\Rina\\Documents\\KTP Rina.jpg", "KTP Rina.jpg"),
    ("control characters", "lap\x00oran\x1b[31m\r\n.xlsx", "laporan[31m.xlsx"),
    ("right-to-left override", "invoice\u202efdp.exe", "invoicefdp.exe"),
    ("zero-width characters", "ta\u200bbel.xlsx", "tabel.xlsx"),
    ("characters Windows forbids", 'data: "2024" <final>?*|.csv', "data_ _2024_ _final____.csv"),
    ("Windows device name", "CON", "_CON"),
    ("Windows device name with extension", "con.txt", "_con.txt"),
    ("Windows printer port", "LPT1.pdf", "_LPT1.pdf"),
    ("device name with trailing space", "aux .doc", "_aux .doc"),
    ("trailing dots and spaces", "laporan.pdf. . ", "laporan.pdf"),
    ("leading dots: no hidden file", "...bashrc", "bashrc"),
    ("runs of white space", "tabel \t  penduduk.xls", "tabel penduduk.xls"),
    ("empty", "", "attachment-1.pdf"),
    ("only dots", "..", "attachment-1.pdf"),
    ("only forbidden characters", "???", "attachment-1.pdf"),
]


@pytest.mark.parametrize(("name", "safe"), [c[1:] for c in SAFE_NAMES], ids=[c[0] for c in SAFE_NAMES])
def test_safe_filename(name: str, safe: str) -> None:
    """A name from a mail becomes one that is safe to write on any disk and still recognisable."""
    assert safe_filename(name, "application/pdf") == safe


def test_long_name_is_cut_keeping_its_extension() -> None:
    """A 300-character name is cut to the cap, extension kept; multi-byte names to the byte cap."""
    long = safe_filename("laporan " * 40 + ".xlsx")
    assert len(long) <= MAX_NAME_CHARS and long.endswith(".xlsx")
    wide = safe_filename("統計" * 100 + ".pdf")
    assert len(wide.encode("utf-8")) <= MAX_NAME_BYTES and wide.endswith(".pdf")


def test_nameless_attachment_is_named_by_position_and_type() -> None:
    """An unnamed part gets attachment-N with the extension of its content type."""
    assert safe_filename("", "image/jpeg", 2) == "attachment-3.jpg"
    assert safe_filename("", "message/rfc822", 0) == "attachment-1.eml"
    assert safe_filename("", "application/x-unknown-thing", 0) == "attachment-1.bin"


def test_repeated_names_are_numbered() -> None:
    """Two files with one name (two photos "image.jpg") get distinct names."""
    assert unique_names(["image.jpg", "IMAGE.jpg", "image.jpg", "README"]) == [
        "image.jpg",
        "IMAGE (2).jpg",
        "image (3).jpg",
        "README",
    ]


def test_rows_keep_bytes_under_the_cap_and_say_so_over_it() -> None:
    """Under attachments.max_bytes the bytes are kept; over it the row has none and says why."""
    small = Attachment("a.pdf", "application/pdf", 4, hashlib.sha256(b"%PDF").hexdigest(), b"%PDF")
    big = Attachment("b.zip", "application/zip", 10, hashlib.sha256(b"x" * 10).hexdigest(), b"x" * 10)
    rows = attachment_rows(7, [small, big], max_bytes=5)
    assert [(r["filename"], r["size"], r["content"], r["omitted"]) for r in rows] == [
        ("a.pdf", 4, b"%PDF", ""),
        ("b.zip", 10, None, "over attachments.max_bytes (5 bytes)"),
    ]
    assert rows[1]["sha256"] == hashlib.sha256(b"x" * 10).hexdigest()


# -- what the store step writes ---------------------------------------------------------------

PDF = b"%PDF-1.4\n% surat permohonan data\n" + bytes(range(256)) * 8
JPEG = b"\xff\xd8\xff\xe0" + b"KTP scan" * 400  # bigger than the PDF: over the test's cap
LOGO = b"\x89PNG\r\n\x1a\n" + b"logo" * 50


def _b64(data: bytes) -> str:
    return base64.encodebytes(data).decode("ascii").replace("\n", "\r\n")


def gmail_mail_with_files() -> bytes:
    """Gmail's shape: multipart/mixed [ related [ alternative [plain, html], cid image ], files ]."""
    return (
        "From: Rina Wulandari <rina@example.com>\r\nTo: bps3514@bps.go.id\r\n"
        "Subject: Surat permohonan data\r\nDate: Mon, 23 Nov 2026 09:00:00 +0700\r\n"
        "Message-ID: <files-1@mail.gmail.com>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="m"\r\n\r\n'
        '--m\r\nContent-Type: multipart/related; boundary="r"\r\n\r\n'
        '--r\r\nContent-Type: multipart/alternative; boundary="a"\r\n\r\n'
        "--a\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nTerlampir surat permohonan dan KTP.\r\n\r\n"
        "--a\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n"
        '<div>Terlampir surat permohonan dan KTP.<br><img src="cid:logo_1"></div>\r\n--a--\r\n'
        '--r\r\nContent-Type: image/png; name="logo.png"\r\n'
        'Content-Disposition: inline; filename="logo.png"\r\n'
        f"Content-Transfer-Encoding: base64\r\nContent-ID: <logo_1>\r\n\r\n{_b64(LOGO)}--r--\r\n"
        '--m\r\nContent-Type: application/pdf; name="Surat Permohonan.pdf"\r\n'
        'Content-Disposition: attachment; filename="../Surat Permohonan.pdf"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{_b64(PDF)}"
        '--m\r\nContent-Type: image/jpeg; name="KTP.jpg"\r\n'
        'Content-Disposition: attachment; filename="KTP.jpg"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{_b64(JPEG)}--m--\r\n"
    ).encode("ascii")


@pytest.fixture
def pipe(settings: Settings, engine: Engine, clock: FrozenClock) -> Pipeline:
    small_cap = dataclasses.replace(settings, attachments=AttachmentSettings(max_bytes=len(PDF)))
    return Pipeline(small_cap, engine, Renderer(), clock)


def stored_attachments(engine: Engine) -> list[AttachmentRow]:
    with db.reading(engine) as s:
        return list(s.execute(select(AttachmentRow).order_by(AttachmentRow.id)).scalars())


def test_store_writes_attachment_rows_without_the_inline_image(pipe: Pipeline, engine: Engine) -> None:
    """The PDF and the KTP scan are stored with safe names, sizes and hashes; the logo the HTML
    shows is not an attachment; a file over the cap keeps its row but not its bytes."""
    raw = gmail_mail_with_files()
    assert pipe.process(FetchedMail("3514", "INBOX", 7, next(_uids), raw)) is Outcome.TICKET_CREATED
    rows = stored_attachments(engine)
    assert [(a.position, a.filename, a.original_filename, a.content_type, a.size) for a in rows] == [
        (0, "Surat Permohonan.pdf", "../Surat Permohonan.pdf", "application/pdf", len(PDF)),
        (1, "KTP.jpg", "KTP.jpg", "image/jpeg", len(JPEG)),
    ]
    pdf, jpeg = rows
    assert (pdf.sha256, pdf.content, pdf.omitted) == (hashlib.sha256(PDF).hexdigest(), PDF, "")
    assert jpeg.sha256 == hashlib.sha256(JPEG).hexdigest()
    assert jpeg.content is None and "over attachments.max_bytes" in jpeg.omitted
    with db.reading(engine) as s:
        message = s.execute(select(MessageRow).where(MessageRow.id == pdf.message_pk)).scalar_one()
    assert message.raw == raw  # the raw mail still holds everything, the inline logo too


def test_mail_without_attachments_writes_no_rows(pipe: Pipeline, engine: Engine) -> None:
    """A plain mail adds no attachment rows."""
    raw = gmail_mail_with_files().split(b"--m\r\n")[0] + b"\r\n"
    raw = raw.replace(b'Content-Type: multipart/mixed; boundary="m"', b"Content-Type: text/plain") + b"Halo."
    pipe.process(FetchedMail("3514", "INBOX", 7, next(_uids), raw))
    assert stored_attachments(engine) == []


# -- winmail.dat -------------------------------------------------------------------------------

RTF = (
    rb"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\fswiss Calibri;}}\f0\fs22 Yth. Petugas PST,\par"
    rb" Terlampir laporan kami \'96 mohon diperiksa.\par Salam,\par Andi\par}"
)
XLSX = b"PK\x03\x04" + b"tabel penduduk" * 40


def _tnef_object(level: int, name: int, kind: int, data: bytes) -> bytes:
    return struct.pack("<BHHI", level, name, kind, len(data)) + data + struct.pack("<H", sum(data) & 0xFFFF)


def _mapi(prop_type: int, prop_id: int, value: bytes) -> bytes:
    """One MAPI property (a string or binary value) in a property list of one."""
    padded = value + b"\x00" * (-len(value) % 4)
    return struct.pack("<IHHII", 1, prop_type, prop_id, 1, len(value)) + padded


def winmail_dat() -> bytes:
    """A winmail.dat as Outlook writes it: compressed RTF body, two files, one with a long
    (Unicode) name, one with only an 8.3 title in windows-1252."""
    long_name = "Laporan Tahunan BPS – 2024.pdf".encode("utf-16-le") + b"\x00\x00"
    return (
        struct.pack("<IH", 0x223E9F78, 0x0001)
        + _tnef_object(1, 0x9006, 0x0008, struct.pack("<I", 0x10000))
        + _tnef_object(1, 0x9007, 0x0006, struct.pack("<II", 1252, 0))
        + _tnef_object(1, 0x8008, 0x0007, b"IPM.Microsoft Mail.Note\x00")
        + _tnef_object(
            1, 0x9003, 0x0006, _mapi(0x0102, 0x1009, compressed_rtf.compress(RTF, compressed=True))
        )
        + _tnef_object(2, 0x9002, 0x0006, b"\x01\x00" + b"\xff" * 12)
        + _tnef_object(2, 0x8010, 0x0001, b"LAPORA~1.PDF\x00")
        + _tnef_object(2, 0x800F, 0x0006, PDF)
        + _tnef_object(2, 0x9005, 0x0006, _mapi(0x001F, 0x3707, long_name))
        + _tnef_object(2, 0x9002, 0x0006, b"\x01\x00" + b"\xff" * 12)
        + _tnef_object(2, 0x8010, 0x0001, b"Tabel \x96 2024.xlsx\x00")
        + _tnef_object(2, 0x800F, 0x0006, XLSX)
    )


def outlook_mail(winmail: bytes, text: str = "") -> bytes:
    return (
        "From: Andi <andi@example.co.id>\r\nTo: bps3514@bps.go.id\r\nSubject: Laporan\r\n"
        "Message-ID: <tnef-1@example.co.id>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="o"\r\n\r\n'
        f"--o\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{text}\r\n"
        '--o\r\nContent-Type: application/ms-tnef; name="winmail.dat"\r\n'
        'Content-Disposition: attachment; filename="winmail.dat"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{_b64(winmail)}--o--\r\n"
    ).encode("ascii")


def test_winmail_dat_is_unpacked_into_its_files_and_body() -> None:
    """The files inside winmail.dat are the attachments (winmail.dat itself is not one) and its
    RTF body is the text when the mail has no other."""
    mail = parse(outlook_mail(winmail_dat()))
    assert [(a.filename, a.content_type, a.size, a.sha256, a.origin) for a in mail.attachments] == [
        (
            "Laporan Tahunan BPS – 2024.pdf",
            "application/pdf",
            len(PDF),
            hashlib.sha256(PDF).hexdigest(),
            "winmail.dat",
        ),
        (
            "Tabel – 2024.xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            len(XLSX),
            hashlib.sha256(XLSX).hexdigest(),
            "winmail.dat",
        ),
    ]
    assert mail.attachments[0].content == PDF
    assert mail.text.split("\n") == [
        "Yth. Petugas PST,",
        "Terlampir laporan kami – mohon diperiksa.",
        "Salam,",
        "Andi",
    ]


def test_winmail_dat_body_does_not_repeat_the_mime_text() -> None:
    """When Outlook also sent a text/plain body, that is the text (the RTF says the same)."""
    mail = parse(outlook_mail(winmail_dat(), text="Terlampir laporan kami."))
    assert mail.text.strip() == "Terlampir laporan kami."
    assert len(mail.attachments) == 2


def test_unreadable_winmail_dat_is_kept_as_it_is() -> None:
    """A winmail.dat that is not TNEF stays an attachment, and the problem is in the defects."""
    mail = parse(outlook_mail(b"not tnef at all, just bytes", text="Lihat lampiran."))
    assert [(a.filename, a.content_type, a.origin) for a in mail.attachments] == [
        ("winmail.dat", "application/ms-tnef", "")
    ]
    assert any(d.startswith("winmail.dat not unpacked: ValueError") for d in mail.defects)


# -- settings ---------------------------------------------------------------------------------

BAD_CAPS = [
    ("max_bytes = -1", "must be at least 0, got -1"),
    ("max_bytes = 600000000", "must be at most 500000000 (one database value), got 600000000"),
    ('max_bytes = "10MB"', "must be an integer, got str"),
]


@pytest.mark.parametrize(("line", "reason"), BAD_CAPS, ids=[c[0] for c in BAD_CAPS])
def test_wrong_attachment_cap_stops_the_start(tmp_path: Path, line: str, reason: str) -> None:
    """A wrong attachments.max_bytes is a ConfigError naming the file, the key and why."""
    path = write_settings(tmp_path, ("max_bytes = 10000000", line))
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ=office_env("pw"))
    assert (caught.value.key, caught.value.reason) == ("attachments.max_bytes", reason)


def test_shipped_attachment_cap() -> None:
    """The shipped settings keep attachments up to 10 MB in the database."""
    path = Path(__file__).resolve().parents[1] / "settings.toml"
    assert load_settings(path, environ=office_env("pw")).attachments.max_bytes == 10_000_000


def test_show_lists_the_attachments(pipe: Pipeline, settings: Settings, tmp_path: Path) -> None:
    """`mailer show REF` lists each attachment with its type, size and hash, and says which
    bytes were not stored."""
    pipe.process(FetchedMail("3514", "INBOX", 7, next(_uids), gmail_mail_with_files()))
    printed = show(settings, tmp_path, "PST-3514-2026-00001")
    assert "Attachments (2):" in printed
    digest = hashlib.sha256(PDF).hexdigest()[:16]
    assert f"Surat Permohonan.pdf  application/pdf, {len(PDF):,} bytes, sha256 {digest}" in printed
    assert "KTP.jpg  image/jpeg" in printed and "bytes not stored: over attachments.max_bytes" in printed
    assert "logo.png" not in printed
