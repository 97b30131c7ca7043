"""Rules: what an incoming mail is, whether it is acknowledged, which language the answer is in
and where it goes. Pure functions, tested with tables of parsed mails."""

from __future__ import annotations

import pytest

from mailer.model import Address, MailKind, ParsedMail
from mailer.parse import parse
from mailer.rules import acknowledgement_recipient, decide, language
from tests.conftest import OFFICE_CODES, make_mail

OWN = frozenset(f"bps{code}@bps.go.id" for code in OFFICE_CODES)
REQUEST_SUBJECT = "Permohonan data jumlah penduduk miskin 2024"


def mail(
    *headers: tuple[str, str], sender: str = "rina@example.com", subject: str = REQUEST_SUBJECT
) -> ParsedMail:
    """A parsed plain-text mail from `sender` with extra headers."""
    raw, _ = make_mail(sender, subject=subject, headers=headers)
    return parse(raw)


def delivery_status_notification() -> ParsedMail:
    """A DSN (multipart/report; report-type=delivery-status) from an ordinary-looking sender, so only
    its content type can tell it is a bounce."""
    raw = (
        "From: Mail Delivery System <notify@mx.example.com>\r\n"
        "To: bps3514@bps.go.id\r\n"
        "Subject: Returned mail: see transcript for details\r\n"
        "Message-ID: <dsn-1@mx.example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary="b1"\r\n'
        "\r\n"
        "--b1\r\n"
        "Content-Type: text/plain\r\n\r\n"
        "The mail could not be delivered.\r\n"
        "--b1\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.com\r\n\r\n"
        "Final-Recipient: rfc822; warga@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "--b1--\r\n"
    ).encode("ascii")
    return parse(raw)


DECISIONS = [
    pytest.param(mail(), MailKind.REQUEST, True, id="plain-request"),
    pytest.param(
        mail(("Auto-Submitted", "auto-replied")), MailKind.AUTO_REPLY, False, id="auto-submitted-auto-replied"
    ),
    pytest.param(
        mail(("Auto-Submitted", "auto-generated")),
        MailKind.AUTO_REPLY,
        False,
        id="auto-submitted-auto-generated",
    ),
    pytest.param(
        mail(("Auto-Submitted", "auto-replied; owner-email=it@example.com")),
        MailKind.AUTO_REPLY,
        False,
        id="auto-submitted-with-parameter",
    ),
    pytest.param(mail(("Auto-Submitted", "no")), MailKind.REQUEST, True, id="auto-submitted-no"),
    pytest.param(mail(("Auto-Submitted", "No")), MailKind.REQUEST, True, id="auto-submitted-No-any-case"),
    pytest.param(mail(("X-Autoreply", "yes")), MailKind.AUTO_REPLY, False, id="x-autoreply"),
    pytest.param(mail(("X-Autorespond", "Out of office")), MailKind.AUTO_REPLY, False, id="x-autorespond"),
    pytest.param(mail(("Precedence", "bulk")), MailKind.LIST, False, id="precedence-bulk"),
    pytest.param(mail(("Precedence", "junk")), MailKind.LIST, False, id="precedence-junk"),
    pytest.param(mail(("Precedence", "list")), MailKind.LIST, False, id="precedence-list"),
    pytest.param(mail(("Precedence", "Bulk")), MailKind.LIST, False, id="precedence-Bulk-any-case"),
    pytest.param(mail(("Precedence", "auto_reply")), MailKind.AUTO_REPLY, False, id="precedence-auto_reply"),
    pytest.param(
        mail(("List-Id", "Berita Statistik <berita.example.com>")), MailKind.LIST, False, id="list-id"
    ),
    pytest.param(mail(("Return-Path", "<>")), MailKind.BOUNCE, False, id="null-return-path"),
    pytest.param(
        mail(("Return-Path", "<rina@example.com>")), MailKind.REQUEST, True, id="ordinary-return-path"
    ),
    pytest.param(
        mail(sender="MAILER-DAEMON@mx.example.com"), MailKind.BOUNCE, False, id="from-mailer-daemon"
    ),
    pytest.param(mail(sender="postmaster@example.com"), MailKind.BOUNCE, False, id="from-postmaster"),
    pytest.param(
        delivery_status_notification(), MailKind.BOUNCE, False, id="multipart-report-delivery-status"
    ),
    pytest.param(
        mail(subject="Automatic reply: Permohonan data"),
        MailKind.AUTO_REPLY,
        False,
        id="subject-automatic-reply",
    ),
    pytest.param(
        mail(subject="Balasan Otomatis: Permohonan data"),
        MailKind.AUTO_REPLY,
        False,
        id="subject-balasan-otomatis",
    ),
    pytest.param(
        mail(subject="Out of Office: Permohonan data"), MailKind.AUTO_REPLY, False, id="subject-out-of-office"
    ),
    pytest.param(
        mail(subject="Re: Permohonan data (saya balas otomatis?)"),
        MailKind.REQUEST,
        True,
        id="automatic-words-not-at-start-are-a-request",
    ),
    pytest.param(
        mail(("X-PST-Mailer", "pst-mailer"), ("Auto-Submitted", "auto-replied")),
        MailKind.OWN,
        False,
        id="our-own-acknowledgement",
    ),
    pytest.param(mail(sender="bps3571@bps.go.id"), MailKind.REQUEST, False, id="from-an-office-address"),
    pytest.param(
        mail(sender="BPS8205@BPS.GO.ID"), MailKind.REQUEST, False, id="from-an-office-address-upper-case"
    ),
    pytest.param(
        mail(sender="bps3571@example.com"), MailKind.REQUEST, True, id="office-local-part-other-domain"
    ),
]


@pytest.mark.parametrize(("parsed", "kind", "acknowledge"), DECISIONS)
def test_decide(parsed: ParsedMail, kind: MailKind, acknowledge: bool) -> None:
    """A mail's headers decide its kind and whether it is acknowledged (RFC 3834 loop protection)."""
    decision = decide(parsed, OWN)
    assert (decision.kind, decision.acknowledge) == (kind, acknowledge), decision.reason
    assert decision.reason


def test_mail_without_from_is_a_request_nobody_is_told_about() -> None:
    """A person's mail with no usable From is still a request, but there is nobody to acknowledge."""
    parsed = ParsedMail(message_id="x@example.com", subject=REQUEST_SUBJECT, from_=None)
    decision = decide(parsed, OWN)
    assert (decision.kind, decision.acknowledge) == (MailKind.REQUEST, False)


LANGUAGES = [
    pytest.param(
        "Permohonan data",
        "Selamat pagi Bapak/Ibu, saya mohon data jumlah penduduk kabupaten Pasuruan tahun 2023. "
        "Terima kasih.",
        "id",
        id="indonesian",
    ),
    pytest.param(
        "Data request",
        "Dear Sir or Madam, I would like to request the poverty data of Pasuruan for the year 2023. "
        "Thank you and kind regards.",
        "en",
        id="english",
    ),
    pytest.param(
        "Request data inflasi",
        "Selamat siang, saya mahasiswa dan ingin meminta data inflasi kota Kediri tahun 2024 untuk "
        "skripsi saya. Apakah bisa dikirim melalui email? Thank you.",
        "id",
        id="mixed-mostly-indonesian",
    ),
    pytest.param(
        "Permohonan data",
        "Hello, could you please send me the GDP data of Kediri for 2024? I need it for my thesis "
        "and would be grateful for any help. Terima kasih.",
        "en",
        id="mixed-mostly-english",
    ),
    pytest.param("", "", "id", id="empty-mail"),
    pytest.param("", "2024 12345 ---", "id", id="no-words"),
]


@pytest.mark.parametrize(("subject", "body", "expected"), LANGUAGES)
def test_language(subject: str, body: str, expected: str) -> None:
    """English requests are answered in English; everything else (and nothing) in Indonesian."""
    parsed = ParsedMail(message_id=None, subject=subject, from_=Address("", "a@example.com"), text=body)
    assert language(parsed) == expected


RECIPIENTS = [
    pytest.param(
        (Address("Rina", "rina@example.com"),),
        Address("Rina", "rina.kantor@example.org"),
        "rina@example.com",
        id="reply-to-wins",
    ),
    pytest.param(
        (Address("", "first@example.com"), Address("", "second@example.com")),
        Address("", "x@example.com"),
        "first@example.com",
        id="first-reply-to",
    ),
    pytest.param((), Address("Budi", "budi@example.com"), "budi@example.com", id="from-without-reply-to"),
    pytest.param((), None, None, id="neither"),
]


@pytest.mark.parametrize(("reply_to", "from_", "expected"), RECIPIENTS)
def test_acknowledgement_recipient(
    reply_to: tuple[Address, ...], from_: Address | None, expected: str | None
) -> None:
    """The acknowledgement goes to the first Reply-To, else to From, else nowhere."""
    parsed = ParsedMail(message_id=None, subject="x", from_=from_, reply_to=reply_to)
    assert acknowledgement_recipient(parsed) == expected


def test_acknowledgement_recipient_from_parsed_headers() -> None:
    """A parsed Reply-To header is where the acknowledgement goes, not the From address."""
    parsed = mail(("Reply-To", "Rina Pribadi <Rina.Pribadi@Example.ORG>"), sender="rina@kampus.ac.id")
    assert acknowledgement_recipient(parsed) == "rina.pribadi@example.org"
