"""Message content end to end on the real loopback stack: a Gmail-shaped reply with quoted
history, an attached PDF and an inline logo goes through Postfix into the office mailbox, the
daemon runs once, and the database holds what the person wrote and the one real attachment."""

from __future__ import annotations

import base64
import hashlib
import uuid

import pytest
from sqlalchemy import select

from mailer.settings import Settings
from storage import db
from storage.tables import AttachmentRow, MessageRow
from tests import mailstack
from tests.conftest import requester
from tests.test_end_to_end import deliver, run_once

pytestmark = [pytest.mark.mailstack, pytest.mark.usefixtures("office_mailboxes")]
OFFICE = "bps3514@bps.go.id"
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\nSurat permohonan data kemiskinan per kecamatan\n" + bytes(range(256)) * 4
LOGO = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"signature logo" * 20
WRITTEN = "Baik, terima kasih.\nBerikut saya lampirkan surat permohonan resminya.\n\nSalam,\nRina"


def _b64(data: bytes) -> str:
    return base64.encodebytes(data).decode("ascii").replace("\n", "\r\n")


def gmail_reply(sender: str) -> bytes:
    """A reply as Gmail sends it: text and HTML with the quoted history, the logo of the
    HTML signature inline (cid:), and a PDF attached."""
    quoted = (
        "Pada Sen, 23 Nov 2026 pukul 09.12 BPS Kabupaten Pasuruan <bps3514@bps.go.id>\r\nmenulis:\r\n\r\n"
        "> Yth. Rina,\r\n>\r\n> Permintaan Anda telah kami terima dengan nomor PST-3514-2026-00001.\r\n"
        "> Mohon lampirkan surat permohonan resmi.\r\n"
    )
    text = WRITTEN.replace("\n", "\r\n") + "\r\n\r\n" + quoted
    html = (
        '<div dir="ltr">Baik, terima kasih.<br>Berikut saya lampirkan surat permohonan resminya.<br><br>'
        'Salam,<br>Rina<br><img src="cid:ii_logo01" alt="logo"></div><br><div class="gmail_quote">'
        '<div class="gmail_attr">Pada Sen, 23 Nov 2026 pukul 09.12 BPS Kabupaten Pasuruan '
        "&lt;bps3514@bps.go.id&gt; menulis:<br></div><blockquote>Yth. Rina,<br>Permintaan Anda telah "
        "kami terima.</blockquote></div>"
    )
    return (
        f"From: Rina Wulandari <{sender}>\r\nTo: BPS Kabupaten Pasuruan <{OFFICE}>\r\n"
        "Subject: Re: Permohonan data kemiskinan [PST-3514-2026-00001]\r\n"
        "Date: Mon, 23 Nov 2026 10:05:00 +0700\r\n"
        f"Message-ID: <CAJ{uuid.uuid4().hex}@mail.gmail.com>\r\n"
        "In-Reply-To: <not-stored-here@bps.go.id>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="000000000000mixed"\r\n\r\n'
        '--000000000000mixed\r\nContent-Type: multipart/related; boundary="000000000000related"\r\n\r\n'
        '--000000000000related\r\nContent-Type: multipart/alternative; boundary="000000000000alt"\r\n\r\n'
        '--000000000000alt\r\nContent-Type: text/plain; charset="UTF-8"\r\n\r\n'
        f"{text}\r\n"
        '--000000000000alt\r\nContent-Type: text/html; charset="UTF-8"\r\n\r\n'
        f"{html}\r\n--000000000000alt--\r\n"
        '--000000000000related\r\nContent-Type: image/png; name="logo.png"\r\n'
        'Content-Disposition: inline; filename="logo.png"\r\nContent-Transfer-Encoding: base64\r\n'
        f"Content-ID: <ii_logo01>\r\nX-Attachment-Id: ii_logo01\r\n\r\n{_b64(LOGO)}"
        "--000000000000related--\r\n"
        '--000000000000mixed\r\nContent-Type: application/pdf; name="Surat Permohonan Rina.pdf"\r\n'
        'Content-Disposition: attachment; filename="Surat Permohonan Rina.pdf"\r\n'
        f"Content-Transfer-Encoding: base64\r\nX-Attachment-Id: f_m1\r\n\r\n{_b64(PDF)}"
        "--000000000000mixed--\r\n"
    ).encode()


def test_reply_with_attachment_inline_image_and_quote_through_the_stack(settings: Settings) -> None:
    """Through Postfix and the daemon: the stored text is what Rina wrote (no quoted history),
    the full text is kept, the PDF is stored with its SHA-256 and bytes, the logo is not an
    attachment, and the raw mail is kept whole."""
    who = requester()
    raw = gmail_reply(who)
    deliver(raw, who)
    report = run_once(settings)
    assert report.errors == {}
    engine = db.make_engine(settings.database_url)
    with db.reading(engine) as s:
        (message,) = s.execute(select(MessageRow).where(MessageRow.direction == "in")).scalars()
        files = list(s.execute(select(AttachmentRow)).scalars())
    engine.dispose()
    assert message.body_trimmed == WRITTEN
    assert "> Mohon lampirkan surat permohonan resmi." in message.body_text
    assert [(a.filename, a.content_type, a.size, a.sha256, a.content) for a in files] == [
        ("Surat Permohonan Rina.pdf", "application/pdf", len(PDF), hashlib.sha256(PDF).hexdigest(), PDF)
    ]
    assert files[0].message_pk == message.id
    ((in_mailbox, _flags),) = mailstack.fetch_all(OFFICE)
    assert message.raw == in_mailbox and message.raw.endswith(raw)  # Postfix only added trace headers
