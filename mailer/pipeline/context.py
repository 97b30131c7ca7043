"""What the pipeline's steps share about one mail, in two parts (see driver.py for the order):

    Reading   what the pure steps (parse → … → complaint) make of the mail; frozen: each pure
              step returns a new one, and no step inside the transaction can change it.
    Attempt   what the steps inside the transaction learn and decide; a fresh one for every
              attempt (the optimistic batch, then the mail's own savepoint), so a retried mail
              is processed as if the rolled-back attempt never happened.

An Attempt starts with the Reading's `officer`, `command` and `complaint`; a step that revises
them (the thread step takes a colleague's new question for a request, the complaint_followup
step finds a follow-up adds nothing) changes the Attempt's, and every later step reads those.

Also here: `Setup`, what every step may use besides the mail, and `Duplicate`, the one
control-flow signal a step raises (caught only by the driver).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from mailer.decide import lifecycle, staff
from mailer.decide.threader import NO_HINTS, OutlookHints, ThreadMatch
from mailer.delivery.render import Outgoing, Renderer
from mailer.intake import bounces
from mailer.model import Decision, FetchedMail, ParsedMail
from mailer.settings import Office, Settings
from storage.tickets import TicketRef


class Duplicate(Exception):
    """The office already has this mail (same Message-ID or same bytes): nothing to do."""


@dataclass(frozen=True, slots=True)
class Setup:
    """What every step may use besides the mail: the settings, the renderer, and the desk's own
    addresses (every office's address and complaint addresses: never a requester)."""

    settings: Settings
    renderer: Renderer
    own_addresses: frozenset[str]


@dataclass(frozen=True, slots=True)
class Reading:
    """What the pure steps make of one mail; each pure step returns a copy with its fields set."""

    fetched: FetchedMail
    office: Office
    now: datetime
    received_at: datetime  # when the office's server got it; the SLA clock starts here
    raw_sha256: str = ""
    dedupe_key: str = ""
    # The bytes the later pure steps read (staff check, bounce report): the mail itself, or of a
    # mail too big to unpack its header and the start of its body (parse.big_preview).
    readable: bytes = b""
    parsed: ParsedMail | None = None
    hints: OutlookHints = NO_HINTS  # Outlook's conversation headers (threading, our reply's)
    written: str = ""  # what the person wrote: the text without quoted history and signature
    decision: Decision | None = None
    officer: staff.Officer | None = None  # when an officer wrote it (identify step)
    command: staff.Command | None = None  # the officer's command (#selesai…), if any
    warnings: tuple[str, ...] = ()  # staff-looking but unverified, ignored commands
    unverified_command: staff.Command | None = None  # in a staff-looking mail not authenticated
    refused: staff.RefusedCommand | None = None  # a command word not obeyed, and why (refusal.py)
    report: bounces.Report | None = None  # what a bounce or complaint says about our mail
    complaint: str = ""  # why the mail reads as a complaint about the service ("" for a request)

    @property
    def mail(self) -> ParsedMail:
        assert self.parsed is not None, "parse step has not run"
        return self.parsed


@dataclass(slots=True)
class Attempt:
    """What the steps inside the transaction learn about one mail, in one attempt."""

    officer: staff.Officer | None = None  # the Reading's, unless the thread step takes it for a request
    command: staff.Command | None = None  # likewise
    complaint: str = ""  # the Reading's, unless a follow-up turns out to add no complaint
    own_copy: str = ""  # why a Sent folder mail is our own mail (skipped as already known)
    match: ThreadMatch | None = None
    ticket: TicketRef | None = None
    new_ticket: bool = False
    participants: dict[str, str] | None = None  # of the ticket joined, as read by the thread step
    link_to: tuple[TicketRef, str] | None = None  # (ticket found but not joined, why)
    reopen: bool = False
    flagged: list[tuple[str, str, str]] = field(default_factory=list)  # (address, flag, reason)
    unflagged: list[str] = field(default_factory=list)  # addresses whose flag was lifted (they wrote)
    report_ignored: str = ""  # why a bounce or abuse report flags nobody (decide/reports.py)
    rating: int | None = None  # the SKM score (1-4) a rating mail gives; it moves no ticket
    rating_how: str = ""  # mailto | reply
    rating_asked: bool = False  # an officer closed it after an answer: the rating request queued
    rating_withheld: str = ""  # … or why it was not (spam/duplicate, asked before, the guard)
    message_pk: int | None = None
    language: str = "id"
    due: datetime | None = None
    early_answers: int = 0  # officers' answers stored earlier that joined this new ticket
    change: lifecycle.Change | None = None
    complaint_in_conversation: bool = False  # a follow-up made its ticket a complaint
    ack_withheld: str = ""  # why a new ticket got no acknowledgement
    reply_to_ignored: tuple[str, ...] = ()  # Reply-To addresses not on From's domain: no ack there
    notice_withheld: str = ""  # why a complaint was not forwarded to the head (an hourly limit)
    ack_held_until: datetime | None = None  # its mail came long ago and it is night: held until then
    outgoing: Outgoing | None = None  # the acknowledgement queued
    warnings: list[str] = field(default_factory=list)  # e.g. a complaint not sent to the head
    refused: staff.RefusedCommand | None = None  # the Reading's, or a command that found no ticket
    refused_for: TicketRef | None = None  # the ticket a refused command named (left untouched)
    refusal_withheld: str = ""  # why the officer was not told that their command was refused
    refusal_queued: bool = False  # the officer was told (a mail in the outbox)

    @classmethod
    def of(cls, read: Reading) -> Attempt:
        """A fresh attempt at storing the mail read."""
        return cls(officer=read.officer, command=read.command, complaint=read.complaint, refused=read.refused)


@dataclass(slots=True)
class MailContext:
    """One mail in the driver's hands: its Reading, the last Attempt, and where it stopped
    (`step`, named in a dead letter; `failure`, the exception that sent it there)."""

    read: Reading
    tx: Attempt = field(default_factory=Attempt)
    step: str = "start"
    failure: Exception | None = None
