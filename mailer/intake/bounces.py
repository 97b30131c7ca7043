"""Reports about mail we sent: bounces (delivery reports) and complaints (feedback reports).

Pure: raw bytes in, a `Report` out, no I/O. Read, in order of trust:

- RFC 3464 DSNs, `multipart/report; report-type=delivery-status`: per recipient the
  Final-Recipient (else Original-Recipient), Action and Status of `message/delivery-status`
  (also RFC 6533's `message/global-delivery-status`);
- RFC 5965 ARF reports, `multipart/report; report-type=feedback-report`: Feedback-Type and
  Original-Rcpt-To of `message/feedback-report`;
- the common non-standard bounces: Exim's `X-Failed-Recipients` header and qmail's
  "Hi. This is the qmail-send program" text, both permanent failures; otherwise a text bounce
  that quotes our mail and gives a 5.x.x status, and no word of a delay, is a permanent failure
  of its (unnamed) recipient.

The original mail's Message-ID and To come from the returned `message/rfc822` or
`text/rfc822-headers` part, else from a "Message-ID:" line of a returned header block quoted
in the text (qmail, many Exchange and webmail bounces). `cited_ids` adds the Message-IDs the
report's own In-Reply-To, References and X-…Original…Message-ID headers name: whether a
report is about mail of ours, and so may flag anyone, is decided on those (decide/reports.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from email import policy
from email.message import Message
from email.parser import BytesParser, HeaderParser
from email.utils import getaddresses

_PARSER = BytesParser(policy=policy.compat32)
_HEADERS = HeaderParser(policy=policy.compat32)
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_BRACKETED_ID = re.compile(r"<([^<>\s]+@[^<>\s]+)>")
_QUOTED_ID = re.compile(r"^[ \t>]*Message-ID:[ \t]*<([^<>\s]+@[^<>\s]+)>", re.IGNORECASE | re.MULTILINE)
_QMAIL = re.compile(r"Hi\. This is the qmail-send program", re.IGNORECASE)
_QMAIL_RCPT = re.compile(r"^<([^<>\s]+@[^<>\s]+)>:[ \t]*$", re.MULTILINE)
_MAX_RECIPIENTS = 100
_MAX_CITED = 20
_ORIGINAL_ID_HEADER = re.compile(r"^x-.*original.*message-?id$", re.IGNORECASE)  # X-Original-Message-ID…
_NOT_COMPLAINTS = {"not-spam"}
FAILED = "failed"  # RFC 3464 Action of a permanent failure (a DSN's word, not the outbox's state)
_DELAY = re.compile(
    r"delayed|will (?:be )?retr|still trying|not yet been delivered|temporar|tertunda", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class Recipient:
    """One recipient a report is about: address ("" when the report does not name it: the
    recipient of the returned mail), DSN action, status code, diagnostic text."""

    address: str
    action: str = ""  # failed | delayed | delivered | relayed | expanded; "" when not given
    status: str = ""  # "5.1.1"; "" when not given
    diagnostic: str = ""

    @property
    def permanent(self) -> bool:
        """A permanent failure: Action failed, or (no Action) a 5.x.x status."""
        return self.action == FAILED if self.action else self.status.startswith("5.")


@dataclass(frozen=True, slots=True)
class Report:
    """What a bounce or a complaint says about one of our mails.

    kind: "dsn" (RFC 3464), "arf" (RFC 5965) or "bounce" (non-standard). recipients: the
    DSN's per-recipient fields; for ARF the Original-Rcpt-To (else the original's To) with
    action "complained". original_message_id: without brackets, None when not returned.
    cited_ids: every Message-ID the report names as the mail it is about (the original's
    first, then its X-…Original-Message-ID, In-Reply-To and References headers), no brackets.
    """

    kind: str
    recipients: tuple[Recipient, ...] = ()
    original_message_id: str | None = None
    original_to: tuple[str, ...] = ()
    feedback_type: str = ""
    cited_ids: tuple[str, ...] = ()

    @property
    def failed(self) -> tuple[Recipient, ...]:
        """The recipients that failed for good (a bounce) or complained (ARF)."""
        if self.kind == "arf":
            return self.recipients if self.feedback_type not in _NOT_COMPLAINTS else ()
        return tuple(r for r in self.recipients if r.permanent)

    def summary(self) -> str:
        """ "dsn failed 5.1.1 (Mailbox does not exist)" / "arf abuse" for logs and the flag table."""
        if self.kind == "arf":
            return f"complaint (ARF feedback-type {self.feedback_type or 'unknown'})"
        first = (self.failed or self.recipients or (Recipient(""),))[0]
        words = [self.kind, first.action or FAILED, first.status]
        text = " ".join(w for w in words if w)
        return f"{text} ({first.diagnostic})" if first.diagnostic else text


def read_report(raw: bytes) -> Report | None:
    """The report in a bounce or complaint mail; None when the bytes hold none we can read."""
    try:
        msg = _PARSER.parsebytes(raw)
    except (ValueError, LookupError, TypeError, IndexError, RecursionError):
        return None
    report_type = (msg.get_param("report-type", header="content-type") or "") if msg.is_multipart() else ""
    report_type = str(report_type).lower()
    original = _original(msg)
    if report_type == "feedback-report":
        report: Report | None = _feedback(msg, original)
    elif report_type == "delivery-status" or _find(msg, _DSN_TYPES) is not None:
        report = _delivery_status(msg, original)
    else:
        report = _non_standard(msg, raw, original)
    return None if report is None else replace(report, cited_ids=_cited(msg, report.original_message_id))


def _cited(msg: Message, original_id: str | None) -> tuple[str, ...]:
    """The Message-IDs a report names as the mail it is about, the returned original's first."""
    ids = [original_id] if original_id else []
    for name, value in msg.items():
        if name.lower() in ("in-reply-to", "references") or _ORIGINAL_ID_HEADER.match(name):
            text = str(value)
            found = _BRACKETED_ID.findall(text)
            bare = text.strip()
            ids.extend(found or ([bare] if "@" in bare and not any(c.isspace() for c in bare) else []))
    return tuple(dict.fromkeys(ids))[:_MAX_CITED]


# -- the returned original ---------------------------------------------------------------------


_ORIGINAL_TYPES = ("message/rfc822", "text/rfc822-headers", "message/global", "message/global-headers")
_DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")


def _original(msg: Message) -> tuple[str | None, tuple[str, ...]]:
    """(Message-ID, To addresses) of the returned original, as far as it is there."""
    part = _find(msg, _ORIGINAL_TYPES)
    if part is None:
        return None, ()
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        headers = payload[0]
    else:
        headers = _HEADERS.parsestr(_text(part), headersonly=True)
    found = _BRACKETED_ID.search(str(headers.get("message-id", "")))
    to = tuple(
        a.lower() for _name, a in getaddresses([str(v) for v in headers.get_all("to", [])]) if "@" in a
    )
    return (found[1] if found else None), to


def _find(msg: Message, types: tuple[str, ...]) -> Message | None:
    """The first part of one of these content types, depth first (not inside returned mail)."""
    if msg.get_content_type() in types:
        return msg
    if not msg.is_multipart() or msg.get_content_type() in ("message/rfc822", "message/global"):
        return None
    for part in msg.get_payload():
        if isinstance(part, Message) and (found := _find(part, types)) is not None:
            return found
    return None


def _text(part: Message) -> str:
    """A leaf part's payload as text (transfer encoding undone), "" when it is not one."""
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload.decode(part.get_content_charset() or "utf-8", errors="replace")
    return ""


# -- the three kinds ---------------------------------------------------------------------------


def _delivery_status(msg: Message, original: tuple[str | None, tuple[str, ...]]) -> Report:
    part = _find(msg, _DSN_TYPES)
    blocks: list[Message] = []
    if part is not None:
        payload = part.get_payload()
        if isinstance(payload, list):
            blocks = [b for b in payload if isinstance(b, Message)]
        else:  # message/global-delivery-status, or a block the parser left as text
            blocks = [_HEADERS.parsestr(b) for b in re.split(r"\r?\n[ \t]*\r?\n", _text(part)) if b.strip()]
    recipients = [r for r in (_dsn_recipient(b) for b in blocks[:_MAX_RECIPIENTS]) if r is not None]
    return Report("dsn", tuple(recipients), original[0], original[1])


def _dsn_recipient(block: Message) -> Recipient | None:
    """One per-recipient block of a DSN, or None for the per-message block."""
    field = block.get("final-recipient") or block.get("original-recipient")
    if field is None:
        return None
    address = _address(str(field))
    if not address:
        return None
    status = _STATUS.search(str(block.get("status", "")))
    diagnostic = str(block.get("diagnostic-code", "")).split(";", 1)[-1]
    return Recipient(
        address=address,
        action=str(block.get("action", "")).split("(", 1)[0].strip().lower(),
        status=status[0] if status else "",
        diagnostic=" ".join(diagnostic.split())[:200],
    )


def _feedback(msg: Message, original: tuple[str | None, tuple[str, ...]]) -> Report:
    part = _find(msg, ("message/feedback-report",))
    fields = Message()
    if part is not None:
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            fields = payload[0]
        else:
            fields = _HEADERS.parsestr(_text(part).lstrip())
    rcpts = [_address(str(v)) for v in fields.get_all("original-rcpt-to", [])]
    addresses = [a for a in rcpts if a] or list(original[1])
    recipients = tuple(Recipient(a, action="complained") for a in dict.fromkeys(addresses))
    kind = str(fields.get("feedback-type", "")).strip().lower()
    return Report("arf", recipients[:_MAX_RECIPIENTS], original[0], original[1], kind)


def _non_standard(msg: Message, raw: bytes, original: tuple[str | None, tuple[str, ...]]) -> Report | None:
    failed = [a.lower() for _n, a in getaddresses(msg.get_all("x-failed-recipients", [])) if "@" in a]
    text = _body_text(msg, raw)
    if not failed and _QMAIL.search(text):
        failed = [a.lower() for a in _QMAIL_RCPT.findall(text)]
    message_id = original[0]
    if message_id is None:
        quoted = _QUOTED_ID.search(text)
        message_id = quoted[1] if quoted else None
    if not failed and message_id is None:
        return None
    recipients = tuple(Recipient(a, action=FAILED, status="5.0.0") for a in dict.fromkeys(failed))
    status = _STATUS.search(text)
    if not recipients and status is not None and status[1] == "5" and not _DELAY.search(text):
        recipients = (Recipient("", action=FAILED, status=status[0]),)
    return Report("bounce", recipients[:_MAX_RECIPIENTS], message_id, original[1])


def _body_text(msg: Message, raw: bytes) -> str:
    """Every text part of the mail (the quoted original included), for the non-standard bounces."""
    texts = [_text(p) for p in msg.walk() if p.get_content_maintype() == "text"]
    if not texts:
        split = raw.replace(b"\r\n", b"\n").find(b"\n\n")
        texts = (
            [raw.replace(b"\r\n", b"\n")[split + 2 :].decode("utf-8", errors="replace")] if split >= 0 else []
        )
    return "\n".join(texts).replace("\r\n", "\n")


def _address(field: str) -> str:
    """The address of a DSN/ARF address field: "rfc822; <a@b.c>" → "a@b.c" ("" if none)."""
    value = field.split(";", 1)[-1].strip().strip("<>").strip()
    return value.lower() if "@" in value and " " not in value else ""
