"""Reports about our mail: the bounces (RFC 3464 DSNs and the common non-standard ones) and
the complaints (RFC 5965 ARF) in tests/samples/reports, read for the original Message-ID,
the recipients, their action and status. Pure, no servers."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailer.decide.rules import decide
from mailer.intake.bounces import Recipient, read_report
from mailer.intake.parse import parse
from storage.vocabulary import MessageKind
from tests.conftest import OFFICE_CODES, make_mail

SAMPLES = Path(__file__).parent / "samples" / "reports"
OWN = frozenset(f"bps{code}@bps.go.id" for code in OFFICE_CODES)

REPORTS = [
    pytest.param(
        "postfix-dsn-failed.eml",
        "dsn",
        "pst.5f1c0d2e9a7b4c3d8e6f0a1b2c3d4e5f@bps.go.id",
        ("rina.w@mhs.unair.example", "failed", "5.1.1"),
        True,
        id="postfix-dsn-returning-the-whole-mail",
    ),
    pytest.param(
        "exchange-ndr-headers-only.eml",
        "dsn",
        "pst.0a1b2c3d4e5f60718293a4b5c6d7e8f9@bps.go.id",
        ("budi.santoso@kemenkeu.example", "failed", "5.1.10"),
        True,
        id="exchange-ndr-text-rfc822-headers",
    ),
    pytest.param(
        "gmail-dsn-delayed.eml",
        "dsn",
        "pst.11223344556677889900aabbccddeeff@bps.go.id",
        ("siti@desa-sukamaju.example", "delayed", "4.4.1"),
        False,
        id="gmail-delay-is-not-a-failure",
    ),
    pytest.param(
        "exim-bounce.eml",
        "bounce",
        "pst.99887766554433221100ffeeddccbbaa@bps.go.id",
        ("andi.pratama@kampus.example", "failed", "5.0.0"),
        True,
        id="exim-x-failed-recipients-and-quoted-headers",
    ),
    pytest.param(
        "qmail-bounce.eml",
        "bounce",
        "pst.abcdefabcdefabcdefabcdefabcdef12@bps.go.id",
        ("dewi.lestari@pemkab.example", "failed", "5.0.0"),
        True,
        id="qmail-send-program",
    ),
    pytest.param(
        "arf-abuse.eml",
        "arf",
        "pst.0f0e0d0c0b0a09080706050403020100@bps.go.id",
        ("joko.susilo@mail.example", "complained", ""),
        True,
        id="arf-abuse-original-rcpt-to",
    ),
    pytest.param(
        "arf-not-spam-headers.eml",
        "arf",
        "pst.77777777777777777777777777777777@bps.go.id",
        ("sari@portal.example", "complained", ""),
        False,
        id="arf-not-spam-is-no-complaint",
    ),
]


@pytest.mark.parametrize(("name", "kind", "original", "first", "counts"), REPORTS)
def test_read_report(name: str, kind: str, original: str, first: tuple[str, str, str], counts: bool) -> None:
    """Each sample gives its kind, the returned mail's Message-ID, the recipient with action and
    status, and whether it is a permanent failure or complaint (what flags an address)."""
    report = read_report((SAMPLES / name).read_bytes())
    assert report is not None
    assert (report.kind, report.original_message_id) == (kind, original)
    recipient = report.recipients[0]
    assert (recipient.address, recipient.action, recipient.status) == first
    assert bool(report.failed) is counts


@pytest.mark.parametrize("name", [p.values[0] for p in REPORTS])
def test_samples_are_never_acknowledged(name: str) -> None:
    """The rules take every sample for a bounce or a complaint, never a person's request."""
    decision = decide(parse((SAMPLES / name).read_bytes()), OWN)
    assert decision.kind in (MessageKind.BOUNCE, MessageKind.FEEDBACK)
    assert not decision.acknowledge


def test_arf_without_rcpt_to_names_the_original_recipient() -> None:
    """An ARF report without Original-Rcpt-To is about the To of the returned mail."""
    raw = (
        (SAMPLES / "arf-abuse.eml")
        .read_bytes()
        .replace(b"Original-Rcpt-To: <joko.susilo@mail.example>\r\n", b"")
    )
    report = read_report(raw)
    assert report is not None
    assert [r.address for r in report.failed] == ["joko.susilo@mail.example"]


def test_plain_text_bounce_with_permanent_status_names_its_recipient_unnamed() -> None:
    """A text bounce quoting our mail with a 5.x.x status is a permanent failure of the
    returned mail's recipient, whom it does not name."""
    raw = (
        b"From: MAILER-DAEMON@mx.example.net\r\nTo: bps3514@bps.go.id\r\nSubject: Returned mail\r\n"
        b"Message-ID: <r1@mx.example.net>\r\n\r\nDelivery to the following recipient failed permanently:\r\n"
        b"    550 5.2.1 The email account that you tried to reach is disabled.\r\n\r\n"
        b"----- Original message -----\r\nMessage-ID: <pst.00000000000000000000000000000001@bps.go.id>\r\n"
        b"Subject: Re: Data\r\n"
    )
    report = read_report(raw)
    assert report is not None and report.kind == "bounce"
    assert report.original_message_id == "pst.00000000000000000000000000000001@bps.go.id"
    assert report.failed == (Recipient("", "failed", "5.2.1"),)


def test_plain_text_delay_warning_is_no_failure() -> None:
    """A text delay warning with a 5.x.x-looking number is no permanent failure."""
    raw = (
        b"From: MAILER-DAEMON@mx.example.net\r\nTo: bps3514@bps.go.id\r\nSubject: Warning: delayed\r\n\r\n"
        b"Your message has been delayed; we will retry. Last error 5.0.0 timeout.\r\n"
        b"Message-ID: <pst.00000000000000000000000000000002@bps.go.id>\r\n"
    )
    report = read_report(raw)
    assert report is not None and report.failed == ()


def test_a_persons_mail_holds_no_report() -> None:
    """An ordinary mail is no report at all."""
    raw, _ = make_mail("rina@example.com")
    assert read_report(raw) is None


def test_broken_report_does_not_raise() -> None:
    """A DSN cut short (no blocks, no original) still reads, with nothing in it."""
    raw = (
        b"From: MAILER-DAEMON@x.example\r\nTo: bps3514@bps.go.id\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: message/delivery-status\r\n\r\n"
    )
    report = read_report(raw)
    assert report is not None and report.recipients == () and report.original_message_id is None
