"""Values passed between the steps of the pipeline (fetch → parse → thread → store → decide → render).

Plain frozen dataclasses: no I/O, no database, safe to build in tests by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from storage.vocabulary import MessageKind

_REF = re.compile(r"\s*PST-(\d{4})-(\d{4})-0*(\d{1,9})\s*", re.IGNORECASE)


def ticket_ref(office_code: str, year: int, seq: int) -> str:
    """A ticket's reference: "PST-3514-2026-00042" (office, year, sequence of the office's year)."""
    return f"PST-{office_code}-{year}-{seq:05d}"


def canonical_ref(text: str) -> str | None:
    """The reference a person meant: "pst-3514-2026-42 " → "PST-3514-2026-00042"; None when the
    text is no reference at all."""
    found = _REF.fullmatch(text)
    return ticket_ref(found[1], int(found[2]), int(found[3])) if found else None


@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox of an address header: display name and the lower-cased address."""

    name: str
    email: str

    def formatted(self) -> str:
        """`Name <email>` (or the bare address), for logs and display."""
        return f"{self.name} <{self.email}>" if self.name else self.email


@dataclass(frozen=True, slots=True)
class Attachment:
    """A part a person attached (not an inline image of an HTML body), or a file unpacked from
    one (`origin` "winmail.dat"). `filename` is as the mail wrote it (decoded), maybe ""."""

    filename: str
    content_type: str
    size: int
    sha256: str
    content: bytes = field(default=b"", repr=False, compare=False)  # the decoded bytes
    origin: str = ""


class Role(StrEnum):
    """Which folder of the office's accounts a mail was found in."""

    INBOX = "inbox"  # the folder the public writes to
    SENT = "sent"  # the account's sent mail: officers answering from the shared mailbox
    COMPLAINT = "complaint"  # the office's complaint mailbox (its own account): every mail a complaint


@dataclass(frozen=True, slots=True)
class FetchedMail:
    """One mail as it came off the server: identity (mailbox, UIDVALIDITY, UID), the bytes,
    when the server received it (IMAP INTERNALDATE; None if the server did not say), and the
    role of the folder it was found in."""

    office_code: str
    mailbox: str
    uidvalidity: int
    uid: int
    raw: bytes
    received_at: datetime | None = None
    role: Role = Role.INBOX


@dataclass(frozen=True, slots=True)
class ParsedMail:
    """What the rest of the pipeline needs to know about a mail.

    Message-IDs are kept without angle brackets. `return_path` is None when the header is
    absent and "" for the null sender `<>` (bounces). `headers` holds the lower-cased,
    decoded values of the headers the rules look at (auto-submitted, precedence, list-id,
    x-loop, x-autoreply, x-auto-response-suppress, content-type, x-pst-ticket, …), the first
    occurrence of each.
    """

    message_id: str | None
    subject: str
    from_: Address | None
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    reply_to: tuple[Address, ...] = ()
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    date: datetime | None = None
    return_path: str | None = None
    content_type: str = "text/plain"
    headers: dict[str, str] = field(default_factory=dict)
    text: str = ""
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()
    defects: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """The rules' verdict on one incoming mail: what it is (one of MessageKind's fetched kinds,
    REQUEST to FEEDBACK) and whether it is acknowledged."""

    kind: MessageKind
    reason: str
    acknowledge: bool
    spam: bool = False  # the receiving server's spam filter says spam: its ticket opens closed


class Outcome(StrEnum):
    """What processing one mail did."""

    TICKET_CREATED = "ticket_created"
    FOLLOWUP = "followup"
    RECORDED = "recorded"  # kept, not on a ticket (auto-reply, bounce, list mail)
    DUPLICATE = "duplicate"
    DEAD_LETTER = "dead_letter"
