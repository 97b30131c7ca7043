"""Rules: what an incoming mail is, whether it is acknowledged, which language the answer is in
and where it goes. Pure functions, tested with tables of parsed mails."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailer.decide.rules import acknowledgement_recipient, decide, is_own_message_id, language, spam_verdict
from mailer.delivery.render import new_message_id
from mailer.intake.parse import parse
from mailer.model import Address, ParsedMail
from mailer.settings import Settings
from storage.vocabulary import MessageKind
from tests.conftest import OFFICE_CODES, make_mail

SAMPLES = Path(__file__).parent / "samples" / "reports"
OWN = frozenset(f"bps{code}@bps.go.id" for code in OFFICE_CODES)
REQUEST_SUBJECT = "Permohonan data jumlah penduduk miskin 2024"


def mail(
    *headers: tuple[str, str], sender: str = "rina@example.com", subject: str = REQUEST_SUBJECT
) -> ParsedMail:
    """A parsed plain-text mail from `sender` with extra headers."""
    raw, _ = make_mail(sender, subject=subject, headers=headers)
    return parse(raw)


def own_message_id_mail(domain: str) -> ParsedMail:
    """A mail carrying a Message-ID of our format (render.new_message_id) in `domain`."""
    raw, _ = make_mail("rina@example.com", message_id=f"pst.{'ab12' * 8}@{domain}")
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
    pytest.param(mail(), MessageKind.REQUEST, True, id="plain-request"),
    pytest.param(
        mail(("Auto-Submitted", "auto-replied")),
        MessageKind.AUTO_REPLY,
        False,
        id="auto-submitted-auto-replied",
    ),
    pytest.param(
        mail(("Auto-Submitted", "auto-generated")),
        MessageKind.AUTO_REPLY,
        False,
        id="auto-submitted-auto-generated",
    ),
    pytest.param(
        mail(("Auto-Submitted", "auto-replied; owner-email=it@example.com")),
        MessageKind.AUTO_REPLY,
        False,
        id="auto-submitted-with-parameter",
    ),
    pytest.param(mail(("Auto-Submitted", "no")), MessageKind.REQUEST, True, id="auto-submitted-no"),
    pytest.param(mail(("Auto-Submitted", "No")), MessageKind.REQUEST, True, id="auto-submitted-No-any-case"),
    pytest.param(mail(("X-Autoreply", "yes")), MessageKind.AUTO_REPLY, False, id="x-autoreply"),
    pytest.param(mail(("X-Autorespond", "Out of office")), MessageKind.AUTO_REPLY, False, id="x-autorespond"),
    pytest.param(mail(("Precedence", "bulk")), MessageKind.LIST, False, id="precedence-bulk"),
    pytest.param(mail(("Precedence", "junk")), MessageKind.LIST, False, id="precedence-junk"),
    pytest.param(mail(("Precedence", "list")), MessageKind.LIST, False, id="precedence-list"),
    pytest.param(mail(("Precedence", "Bulk")), MessageKind.LIST, False, id="precedence-Bulk-any-case"),
    pytest.param(
        mail(("Precedence", "auto_reply")), MessageKind.AUTO_REPLY, False, id="precedence-auto_reply"
    ),
    pytest.param(
        mail(("List-Id", "Berita Statistik <berita.example.com>")), MessageKind.LIST, False, id="list-id"
    ),
    pytest.param(mail(("Return-Path", "<>")), MessageKind.BOUNCE, False, id="null-return-path"),
    pytest.param(
        mail(("Return-Path", "<rina@example.com>")), MessageKind.REQUEST, True, id="ordinary-return-path"
    ),
    pytest.param(
        mail(sender="MAILER-DAEMON@mx.example.com"), MessageKind.BOUNCE, False, id="from-mailer-daemon"
    ),
    pytest.param(mail(sender="postmaster@example.com"), MessageKind.BOUNCE, False, id="from-postmaster"),
    pytest.param(
        delivery_status_notification(), MessageKind.BOUNCE, False, id="multipart-report-delivery-status"
    ),
    pytest.param(
        mail(subject="Automatic reply: Permohonan data"),
        MessageKind.AUTO_REPLY,
        False,
        id="subject-automatic-reply",
    ),
    pytest.param(
        mail(subject="Balasan Otomatis: Permohonan data"),
        MessageKind.AUTO_REPLY,
        False,
        id="subject-balasan-otomatis",
    ),
    pytest.param(
        mail(subject="Out of Office: Permohonan data"),
        MessageKind.AUTO_REPLY,
        False,
        id="subject-out-of-office",
    ),
    pytest.param(
        mail(subject="Re: Permohonan data (saya balas otomatis?)"),
        MessageKind.REQUEST,
        True,
        id="automatic-words-not-at-start-are-a-request",
    ),
    pytest.param(
        mail(("X-PST-Mailer", "pst-mailer"), ("Auto-Submitted", "auto-replied")),
        MessageKind.OWN,
        False,
        id="our-own-acknowledgement",
    ),
    pytest.param(mail(sender="bps3571@bps.go.id"), MessageKind.REQUEST, False, id="from-an-office-address"),
    pytest.param(
        mail(sender="BPS8205@BPS.GO.ID"), MessageKind.REQUEST, False, id="from-an-office-address-upper-case"
    ),
    pytest.param(
        mail(sender="bps3571@example.com"), MessageKind.REQUEST, True, id="office-local-part-other-domain"
    ),
    # Loops and abuse (issue 3): X-Loop, our own Message-IDs, every List-* header, Precedence as
    # written in the wild, X-Auto-Response-Suppress, Exim bounces and ARF complaints.
    pytest.param(mail(("X-Loop", "bps3514@bps.go.id")), MessageKind.OWN, False, id="x-loop-names-an-office"),
    pytest.param(
        mail(("X-Loop", "BPS Pasuruan <BPS3514@BPS.GO.ID>")),
        MessageKind.OWN,
        False,
        id="x-loop-named-upper-case",
    ),
    pytest.param(
        mail(("X-Loop", "helpdesk@example.org"), ("X-Loop", "bps8205@bps.go.id")),
        MessageKind.OWN,
        False,
        id="x-loop-ours-behind-another-hop",
    ),
    pytest.param(
        mail(("X-Loop", "helpdesk@example.org")), MessageKind.REQUEST, True, id="x-loop-of-someone-else"
    ),
    pytest.param(own_message_id_mail("bps.go.id"), MessageKind.OWN, False, id="our-message-id-came-back"),
    pytest.param(
        own_message_id_mail("example.com"), MessageKind.REQUEST, True, id="our-id-format-other-domain"
    ),
    pytest.param(
        mail(("List-Post", "<mailto:diskusi@lists.example.org>")), MessageKind.LIST, False, id="list-post"
    ),
    pytest.param(
        mail(("List-Unsubscribe", "<mailto:leave@news.example.com>"), ("List-Post", "NO")),
        MessageKind.LIST,
        False,
        id="list-unsubscribe-with-list-post",
    ),
    pytest.param(mail(("List-Help", "<mailto:help@l.example.org>")), MessageKind.LIST, False, id="list-help"),
    pytest.param(
        mail(("List-Subscribe", "<mailto:join@l.example.org>")), MessageKind.LIST, False, id="list-subscribe"
    ),
    pytest.param(
        mail(("List-Owner", "<mailto:owner@l.example.org>")), MessageKind.LIST, False, id="list-owner"
    ),
    pytest.param(
        mail(("List-Archive", "<https://l.example.org/arsip>")), MessageKind.LIST, False, id="list-archive"
    ),
    pytest.param(
        mail(("Mailing-List", "contact diskusi-help@l.example.org; run by ezmlm")),
        MessageKind.LIST,
        False,
        id="ezmlm-mailing-list",
    ),
    pytest.param(
        mail(("X-Mailing-List", "<diskusi@l.example.org>")), MessageKind.LIST, False, id="x-mailing-list"
    ),
    pytest.param(
        mail(("Precedence", "bulk (newsletter)")), MessageKind.LIST, False, id="precedence-with-comment"
    ),
    pytest.param(mail(("Precedence", '"junk"')), MessageKind.LIST, False, id="precedence-quoted"),
    pytest.param(
        mail(("Precedence", "auto-reply")), MessageKind.AUTO_REPLY, False, id="precedence-auto-reply"
    ),
    pytest.param(mail(("Precedence", "autoreply")), MessageKind.AUTO_REPLY, False, id="precedence-autoreply"),
    pytest.param(mail(("Precedence", "first-class")), MessageKind.REQUEST, True, id="precedence-first-class"),
    pytest.param(
        mail(("X-Auto-Response-Suppress", "All")), MessageKind.REQUEST, False, id="suppress-all-ticket-no-ack"
    ),
    pytest.param(
        mail(("X-Auto-Response-Suppress", "DR, AutoReply")),
        MessageKind.REQUEST,
        False,
        id="suppress-autoreply-ticket-no-ack",
    ),
    pytest.param(
        mail(("X-Auto-Response-Suppress", "OOF")), MessageKind.REQUEST, True, id="suppress-oof-only"
    ),
    pytest.param(
        mail(("X-Auto-Response-Suppress", "DR, RN, NRN")),
        MessageKind.REQUEST,
        True,
        id="suppress-receipts-only",
    ),
    pytest.param(
        mail(("X-Failed-Recipients", "rina@example.com")),
        MessageKind.BOUNCE,
        False,
        id="exim-x-failed-recipients",
    ),
    pytest.param(
        parse((SAMPLES / "arf-abuse.eml").read_bytes()), MessageKind.FEEDBACK, False, id="arf-feedback-report"
    ),
]


@pytest.mark.parametrize(("parsed", "kind", "acknowledge"), DECISIONS)
def test_decide(parsed: ParsedMail, kind: MessageKind, acknowledge: bool) -> None:
    """A mail's headers decide its kind and whether it is acknowledged (RFC 3834 loop protection)."""
    decision = decide(parsed, OWN)
    assert (decision.kind, decision.acknowledge) == (kind, acknowledge), decision.reason
    assert decision.reason


SPAM_HEADERS = [
    pytest.param(("X-Spam-Flag", "YES"), "X-Spam-Flag: YES", id="spamassassin-flag"),
    pytest.param(
        ("X-Spam-Status", "Yes, score=9.1 required=5.0 tests=URIBL"), "X-Spam-Status: Yes", id="status"
    ),
    pytest.param(("X-Spam", "Yes"), "X-Spam: Yes", id="rspamd"),
    pytest.param(("X-Spam-Flag", "NO"), "", id="flag-no"),
    pytest.param(("X-Spam-Status", "No, score=-1.1 required=5.0"), "", id="status-no"),
    pytest.param(("X-Spam-Score", "12.5"), "", id="a-score-alone-is-no-verdict"),
]


@pytest.mark.parametrize(("header", "verdict"), SPAM_HEADERS)
def test_spam_verdict(header: tuple[str, str], verdict: str) -> None:
    """Only a spam filter's yes (X-Spam-Flag, X-Spam-Status, X-Spam) marks a mail as spam."""
    assert spam_verdict(mail(header).headers) == verdict


def test_spam_is_a_request_never_acknowledged() -> None:
    """A mail the receiving server's filter marked as spam opens a ticket (kind request, marked
    spam) but gets no acknowledgement: its From is likely forged (no backscatter)."""
    decision = decide(mail(("X-Spam-Flag", "YES")), OWN)
    assert (decision.kind, decision.acknowledge, decision.spam) == (MessageKind.REQUEST, False, True)
    assert "spam filter" in decision.reason
    assert decide(mail(("X-Spam-Flag", "NO")), OWN).spam is False


def test_mail_without_from_is_a_request_nobody_is_told_about() -> None:
    """A person's mail with no usable From is still a request, but there is nobody to acknowledge."""
    parsed = ParsedMail(message_id="x@example.com", subject=REQUEST_SUBJECT, from_=None)
    decision = decide(parsed, OWN)
    assert (decision.kind, decision.acknowledge) == (MessageKind.REQUEST, False)


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
        Address("Rina", "rina.kantor@example.com"),
        "rina@example.com",
        id="reply-to-on-the-same-domain",
    ),
    pytest.param(
        (Address("Rina", "rina@example.com"),),
        Address("Rina", "rina.kantor@example.org"),
        "rina.kantor@example.org",
        id="reply-to-on-another-domain-ignored",
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
    """The acknowledgement goes to From, or the first Reply-To on From's domain; else nowhere."""
    parsed = ParsedMail(message_id=None, subject="x", from_=from_, reply_to=reply_to)
    assert acknowledgement_recipient(parsed) == expected


def test_acknowledgement_recipient_from_parsed_headers() -> None:
    """A parsed Reply-To header on From's domain (any case) is where the acknowledgement goes."""
    parsed = mail(("Reply-To", "Rina Pribadi <Rina.Pribadi@Kampus.AC.ID>"), sender="rina@kampus.ac.id")
    assert acknowledgement_recipient(parsed) == "rina.pribadi@kampus.ac.id"


def test_render_message_ids_are_recognised_as_ours(settings: Settings) -> None:
    """Every Message-ID render.new_message_id makes is recognised as ours, and only in our domains."""
    office = settings.office("3514")
    mid = new_message_id(office)
    assert is_own_message_id(mid, OWN)
    assert is_own_message_id(mid.upper(), OWN)
    assert not is_own_message_id(mid.replace("@bps.go.id", "@example.com"), OWN)
    assert not is_own_message_id("pst.1234@bps.go.id", OWN)
    assert not is_own_message_id(None, OWN)
