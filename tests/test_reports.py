"""Reports about our mail: the bounces (RFC 3464 DSNs and the common non-standard ones) and
the complaints (RFC 5965 ARF) in tests/samples/reports, read for the original Message-ID,
the recipients, their action and status. Pure, no servers."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailer.decide.reports import CITES_OURS, NO_FAILURE, UNPROVEN, standing
from mailer.decide.rules import decide
from mailer.intake.bounces import Recipient, Report, read_report
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


# --- which Message-IDs a report cites (what makes it count: decide/reports.py) ------------------

OURS = "pst.0123456789abcdef0123456789abcdef@bps.go.id"
DSN_HEAD = (
    "From: MAILER-DAEMON@mx.example.net\r\nTo: bps3514@bps.go.id\r\nSubject: Undelivered\r\n{extra}"
    "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
    "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n"
    "Final-Recipient: rfc822; rina@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n{original}--b--\r\n"
)
RETURNED = f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{OURS}>\r\n\r\n"
CITED = [
    ("", RETURNED, (OURS,)),
    (f"In-Reply-To: <{OURS}>\r\n", "", (OURS,)),
    (f"References: <a@x.example> <{OURS}>\r\n", "", ("a@x.example", OURS)),
    (f"X-Original-Message-ID: <{OURS}>\r\n", "", (OURS,)),
    (f"X-MS-Exchange-Original-MessageId: {OURS}\r\n", "", (OURS,)),
    ("In-Reply-To: <b@x.example>\r\n", RETURNED, (OURS, "b@x.example")),  # the original's first
    ("X-Original-To: rina@example.com\r\n", "", ()),  # an address, not a Message-ID header
    ("", "", ()),
]


@pytest.mark.parametrize(("extra", "original", "expected"), CITED)
def test_cited_ids_come_from_the_original_and_the_reports_own_headers(
    extra: str, original: str, expected: tuple[str, ...]
) -> None:
    """A report cites the returned original's Message-ID, then those of its In-Reply-To,
    References and X-…Original…Message-ID headers."""
    report = read_report(DSN_HEAD.format(extra=extra, original=original).encode())
    assert report is not None and report.cited_ids == expected


RINA, MALLORY, BUDI = "rina@unair.example", "mallory@evil.example", "budi@x.example"
NOT_ITS_DOMAIN = "which is not the domain it names"
OWN_OFFICE = frozenset({"bps3514@bps.go.id"})


def dsn_of(*rcpts: str, action: str = "failed") -> Report:
    return Report("dsn", tuple(Recipient(r, action=action, status="5.1.1") for r in rcpts))


def arf_of(*rcpts: str, feedback: str = "abuse") -> Report:
    return Report("arf", tuple(Recipient(r, action="complained") for r in rcpts), feedback_type=feedback)


STANDING = [
    # (report, recipients of our mail it cites (None: none), authenticated domain, flags, why)
    (arf_of(RINA), None, "", (), UNPROVEN),  # the forged ARF of issue 13
    (dsn_of(RINA), None, "", (), UNPROVEN),  # the forged bounce
    (arf_of(RINA), (RINA,), "", (RINA,), CITES_OURS),
    (dsn_of("rina@forwarded.example"), (RINA,), "", (RINA,), CITES_OURS),  # a forwarder's report
    (arf_of(RINA), (MALLORY,), "", (MALLORY,), CITES_OURS),  # his own ack cited: only he is flagged
    (dsn_of(RINA, BUDI), (RINA, BUDI, "sari@x.example"), "", (RINA, BUDI), CITES_OURS),
    (dsn_of(RINA, action="delayed"), (RINA,), "", (), NO_FAILURE),
    (arf_of(RINA, feedback="not-spam"), (RINA,), "", (), NO_FAILURE),
    (dsn_of("bps3514@bps.go.id"), ("bps3514@bps.go.id",), "", (), CITES_OURS),  # never an office
    (dsn_of(RINA), None, "unair.example", (RINA,), "authenticated for unair.example"),
    (dsn_of(RINA), None, "mx.unair.example", (RINA,), "authenticated for mx.unair.example"),
    (dsn_of(RINA), None, "evil.example", (), f"authenticated for evil.example, {NOT_ITS_DOMAIN}"),
    (dsn_of(RINA, action="delayed"), None, "unair.example", (), NO_FAILURE),
]  # fmt: skip


@pytest.mark.parametrize(("report", "ours", "domain", "flags", "why"), STANDING)
def test_a_report_flags_only_when_it_proves_it_is_about_our_mail(
    report: Report, ours: tuple[str, ...] | None, domain: str, flags: tuple[str, ...], why: str
) -> None:
    """A report flags only citing our mail (its recipient) or authenticated for the domain of
    the address it names; anything else flags nobody, and says why."""
    found = standing(report, ours, domain, OWN_OFFICE)
    assert (found.addresses, found.why) == (flags, why)
    assert found.ignored == (not flags and why not in (CITES_OURS, NO_FAILURE))
