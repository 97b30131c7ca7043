"""The per-mail driver: a named, ordered tuple of steps (GNU Mailman's pipeline habit).

    parse → trim → classify → identify → report → complaint
      → [ dedupe → thread → flags → rating → store → early_answer → relate → lifecycle
          → complaint_followup → adopt_answers → acknowledge → notify_head → cursor ]  one transaction

The bracketed steps share one database transaction, so the raw mail, the ticket, the
rendered acknowledgement (an outbox row) and the mailbox cursor are committed together or
not at all. A step that raises sends the mail to the dead letters, kept whole with the step's
name and the reason, and the cursor moves on: one bad mail never stops the others.
`Duplicate` is the one control-flow signal, caught only here (also raised for the Sent
folder's copy of a mail we sent ourselves: staff_steps.own_copy).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy import Engine
from sqlmodel import Session

from mailer import log
from mailer.clock import Clock
from mailer.decide import lifecycle, quiet, rules, sla, staff
from mailer.decide.threader import (
    NO_HINTS,
    Admission,
    OutlookHints,
    ThreadMatch,
    admit,
    find_ticket,
    normalise_subject,
    outlook_hints,
    outlook_reply_headers,
    people_on,
    within_reopen_window,
)
from mailer.decide.trim import trim
from mailer.delivery import guard
from mailer.delivery.outbox import enqueue
from mailer.delivery.render import Outgoing, Renderer
from mailer.intake import bounces as reports
from mailer.intake.attachments import attachment_rows
from mailer.intake.parse import parse
from mailer.model import Decision, FetchedMail, MailKind, Outcome, ParsedMail, Role
from mailer.pipeline import aftercare_steps, staff_steps
from mailer.settings import Office, Settings
from storage import db, repo

logger = log.get(__name__)
BOUNCE_MATCH_WINDOW = timedelta(days=30)  # a bounce without our Message-ID: our mail to it since


class Duplicate(Exception):
    """The office already has this mail (same Message-ID or same bytes): nothing to do."""


@dataclass
class MailContext:
    """Everything the steps learn about one mail, filled in step by step."""

    fetched: FetchedMail
    office: Office
    now: datetime
    received_at: datetime  # when the office's server got it; the SLA clock starts here
    raw_sha256: str = ""
    dedupe_key: str = ""
    parsed: ParsedMail | None = None
    written: str = ""  # what the person wrote: the text without quoted history and signature
    decision: Decision | None = None
    match: ThreadMatch | None = None
    ticket: repo.TicketRef | None = None
    new_ticket: bool = False
    language: str = "id"
    due: datetime | None = None
    step: str = "start"  # the step running, named in a dead letter
    failure: Exception | None = None
    outgoing: Outgoing | None = None
    officer: staff.Officer | None = None  # set when an officer wrote it
    command: staff.Command | None = None
    warnings: list[str] = field(default_factory=list)  # staff-looking but unverified, ignored commands
    message_pk: int | None = None
    change: lifecycle.Change | None = None
    report: reports.Report | None = None  # what a bounce or complaint says about our mail
    flagged: list[tuple[str, str, str]] = field(default_factory=list)  # (address, flag, reason)
    unflagged: list[str] = field(default_factory=list)  # addresses whose bouncing flag was lifted
    ack_withheld: str = ""  # why a new ticket got no acknowledgement
    ack_held_until: datetime | None = None  # its mail came long ago and it is night: held until then
    hints: OutlookHints = NO_HINTS
    participants: dict[str, str] | None = None  # of the ticket joined, as read by the thread step
    link_to: tuple[repo.TicketRef, str] | None = None  # (ticket found but not joined, why)
    reopen: bool = False
    complaint: str = ""  # why a mail is a complaint about the service ("" for a request)
    complaint_in_conversation: bool = False  # a follow-up made its ticket a complaint
    own_copy: str = ""  # why a Sent folder mail is our own mail (skipped as already known)
    early_answers: int = 0  # officers' answers stored earlier that joined this new ticket
    rating: int | None = None  # the SKM score (1-4) a rating mail gives; it moves no ticket
    rating_how: str = ""  # mailto | reply

    def reset_transaction_state(self) -> None:
        """Forget what the transactional steps learnt (their writes were rolled back)."""
        self.match, self.ticket, self.new_ticket, self.outgoing = None, None, False, None
        self.message_pk, self.change = None, None
        self.flagged, self.unflagged, self.ack_withheld, self.ack_held_until = [], [], "", None
        self.participants, self.link_to, self.reopen = None, None, False
        self.rating, self.rating_how = None, ""
        self.complaint_in_conversation, self.own_copy, self.early_answers = False, "", 0
        self.due = None

    @property
    def mail(self) -> ParsedMail:
        assert self.parsed is not None, "parse step has not run"
        return self.parsed


Step = Callable[["Pipeline", MailContext], None]
TxStep = Callable[["Pipeline", MailContext, Session], None]
Finish = Callable[[Session, Sequence[MailContext], Sequence["Outcome"]], None]


def dedupe_key(message_id: str | None, raw: bytes, mail: ParsedMail) -> str:
    """Identity of a mail across folders and resyncs: its Message-ID plus a digest of its body
    (the bytes after the header block) and of the headers its author wrote (From, To, Cc,
    Subject, Date). Copies of one mail differ only in trace headers (Received, Delivered-To,
    Return-Path), so they share it; different mails that reuse a Message-ID don't."""
    split = raw.find(b"\r\n\r\n")
    body = raw[split + 4 :] if split >= 0 else raw[raw.find(b"\n\n") + 2 :] if b"\n\n" in raw else raw
    digest = hashlib.sha256(body)
    people = [a.email for a in (mail.from_, *mail.to, *mail.cc) if a is not None]
    stamp = mail.date.isoformat() if mail.date else ""
    digest.update("\0".join([mail.subject, stamp, *people]).encode("utf-8", "surrogatepass"))
    return f"mid:{message_id}:{digest.hexdigest()[:32]}" if message_id else f"body:{digest.hexdigest()[:32]}"


def step_parse(p: Pipeline, ctx: MailContext) -> None:
    ctx.raw_sha256 = hashlib.sha256(ctx.fetched.raw).hexdigest()
    ctx.parsed = parse(ctx.fetched.raw)
    mid = ctx.parsed.message_id
    ctx.dedupe_key = dedupe_key(mid, ctx.fetched.raw, ctx.parsed)


def step_trim(p: Pipeline, ctx: MailContext) -> None:
    ctx.written = trim(ctx.mail.text)[0]


def step_classify(p: Pipeline, ctx: MailContext) -> None:
    ctx.decision = rules.decide(ctx.mail, p.own_addresses)


def step_identify(p: Pipeline, ctx: MailContext) -> None:
    """Is it an officer's mail (Sent folder, office account, staff address), and a command?"""
    if ctx.decision is None or ctx.decision.kind is not MailKind.REQUEST:
        return  # auto-replies, bounces, our own mail: nobody's answer
    officer, why = staff.identify(ctx.mail, ctx.fetched.raw, ctx.office, ctx.fetched.role, p.own_addresses)
    if why:
        ctx.warnings.append(why)
    if officer is not None:
        ctx.officer = officer
        ctx.command, why = staff.command(ctx.mail, p.own_addresses)
        if why:
            ctx.warnings.append(why)


def step_report(p: Pipeline, ctx: MailContext) -> None:
    """A bounce or complaint: read what it says about which of our mails (pure)."""
    if ctx.decision is not None and ctx.decision.kind in (MailKind.BOUNCE, MailKind.FEEDBACK):
        ctx.report = reports.read_report(ctx.fetched.raw)


def step_dedupe(p: Pipeline, ctx: MailContext, s: Session) -> None:
    """Stored already: the same mail, or the Sent folder's copy of one we sent (our ack…)."""
    if repo.message_exists(s, ctx.office.code, ctx.dedupe_key):
        raise Duplicate(ctx.dedupe_key)
    ctx.own_copy = staff_steps.own_copy(ctx, s)
    if ctx.own_copy:
        raise Duplicate(ctx.own_copy)


def step_thread(p: Pipeline, ctx: MailContext, s: Session) -> None:
    """Find the ticket (threader.find_ticket) and decide whether the mail joins it, reopens it,
    or opens a new ticket linked to it (threader.admit, the reopen window)."""
    rules_of, mail = p.settings.threading, ctx.mail
    window = timedelta(days=rules_of.subject_window_days)
    ctx.hints = outlook_hints(ctx.fetched.raw)
    ctx.match = match = find_ticket(s, ctx.office.code, mail, ctx.now, window, ctx.hints, p.own_addresses)
    if match is None and ctx.officer is not None:  # officers may paste the reference anywhere
        for ref in staff.ticket_refs(mail):
            found = repo.ticket_by_ref(s, ref, office=ctx.office.code)
            if found is not None:
                ctx.match = match = ThreadMatch(found, "ticket_ref_in_text")
                break
    if match is None:
        if ctx.officer is not None and ctx.fetched.role is Role.INBOX and ctx.officer.how.startswith("staff"):
            ctx.officer, ctx.command = None, None  # a colleague's new question: a request like anyone's
        return
    assert ctx.decision is not None
    automatic = ctx.decision.kind is not MailKind.REQUEST
    sender = mail.from_.email if mail.from_ else ""
    participants = repo.ticket_participants(s, match.ticket.id)
    if ctx.officer is not None:  # the office's staff are on every ticket of the office
        ctx.ticket, ctx.participants = match.ticket, participants
        return
    verdict = admit(match, sender, people_on(mail, p.own_addresses) - {sender}, participants, automatic)
    if verdict is Admission.NEW_LINKED:
        ctx.link_to = (match.ticket, "not_a_participant")
    elif verdict is Admission.JOIN and match.ticket.state == "closed" and not automatic:
        closed_at = repo.ticket_closed_at(s, match.ticket.id)
        if within_reopen_window(closed_at, ctx.received_at, timedelta(days=rules_of.reopen_days)):
            ctx.ticket, ctx.participants, ctx.reopen = match.ticket, participants, True
        else:
            ctx.link_to = (match.ticket, "reopen_window_passed")
    elif verdict is Admission.JOIN:
        ctx.ticket, ctx.participants = match.ticket, participants
    if ctx.link_to is not None and (requester := rules.acknowledgement_recipient(mail)):
        # the same person writing again the same way continues the ticket opened for them
        earlier = repo.linked_ticket_of(s, match.ticket.id, requester)
        if earlier is not None:
            ctx.ticket, ctx.link_to = earlier, None
            ctx.participants = repo.ticket_participants(s, earlier.id)


def step_flags(p: Pipeline, ctx: MailContext, s: Session) -> None:
    """A report about one of our mails joins that mail's ticket and flags the address that
    failed for good (bouncing) or complained; a person writing again lifts their bouncing flag."""
    decision, office = ctx.decision, ctx.office
    assert decision is not None
    if decision.kind is MailKind.REQUEST and ctx.mail.from_ is not None:
        if repo.clear_address_flag(s, office.code, ctx.mail.from_.email, "bouncing"):
            ctx.unflagged.append(ctx.mail.from_.email)
        return
    report = ctx.report
    ours = _reported_mail(s, ctx, report) if report is not None else None
    if report is None or ours is None:
        return  # about no mail of ours (e.g. backscatter of forged mail): recorded, nobody flagged
    if ours.ticket is not None:
        ctx.ticket, ctx.match = ours.ticket, ThreadMatch(ours.ticket, f"{report.kind}_report")
    if not report.failed:
        return  # a delay, a success notice, a "not spam" report: kept on the ticket, no flag
    flag, reason = ("complained" if report.kind == "arf" else "bouncing"), report.summary()
    ticket_id = ours.ticket.id if ours.ticket else None
    for address in _failed_recipients(ours, report):
        if address not in p.own_addresses and repo.flag_address(
            s, office.code, address, flag, ctx.now, reason, ticket_id
        ):
            ctx.flagged.append((address, flag, reason))


def _failed_recipients(ours: repo.OutgoingRef, report: reports.Report) -> list[str]:
    """Which of our mail's recipients the report says failed: the one recipient of an
    acknowledgement (whatever address a forwarder's report names), else those it names."""
    if len(ours.recipients) == 1:
        return list(ours.recipients)
    return [r.address for r in report.failed if r.address in ours.recipients]


def _reported_mail(s: Session, ctx: MailContext, report: reports.Report) -> repo.OutgoingRef | None:
    """Our mail a report is about: by its returned Message-ID, else the newest mail we queued
    for one of the recipients it names (within BOUNCE_MATCH_WINDOW)."""
    office = ctx.office.code
    if report.original_message_id:
        ours = repo.outgoing_by_message_id(s, office, report.original_message_id)
        if ours is not None:
            return ours
    since = ctx.now - BOUNCE_MATCH_WINDOW
    for recipient in report.failed:
        if not recipient.address:
            continue
        ours = repo.latest_outgoing_to(s, office, recipient.address, since)
        if ours is not None:
            return ours
    return None


def step_store(p: Pipeline, ctx: MailContext, s: Session) -> None:
    mail, decision, office = ctx.mail, ctx.decision, ctx.office
    assert decision is not None
    if ctx.ticket is None and decision.kind is MailKind.REQUEST and ctx.officer is None:
        ctx.ticket, ctx.new_ticket = _open_ticket(s, ctx), True
    kind, direction = str(decision.kind), "in"
    if ctx.officer is not None:
        kind, direction = _staff_kind(ctx, p.own_addresses)
    elif ctx.rating is not None:
        kind = "rating"
    elif decision.kind is MailKind.REQUEST and not ctx.new_ticket:
        kind = "followup"
    ctx.message_pk = repo.add_message(
        s,
        office_code=office.code,
        ticket_id=ctx.ticket.id if ctx.ticket else None,
        direction=direction,
        kind=kind,
        reason=decision.reason,
        message_id=mail.message_id,
        conversation_index=ctx.hints.conversation,
        dedupe_key=ctx.dedupe_key,
        folder=ctx.fetched.mailbox,
        uidvalidity=ctx.fetched.uidvalidity,
        uid=ctx.fetched.uid,
        from_email=mail.from_.email if mail.from_ else "",
        from_name=mail.from_.name if mail.from_ else "",
        to_emails=", ".join(a.email for a in (*mail.to, *mail.cc)),
        subject=mail.subject,
        sent_at=mail.date,
        stored_at=ctx.now,
        body_text=mail.text,
        body_trimmed=ctx.written,
        defects="\n".join(mail.defects),
        raw_sha256=ctx.raw_sha256,
        raw=ctx.fetched.raw,
    )
    if mail.attachments:
        rows = attachment_rows(ctx.message_pk, mail.attachments, p.settings.attachments.max_bytes)
        repo.add_attachments(s, rows)
    if ctx.ticket is not None and not ctx.new_ticket:  # a new ticket counts its first mail itself
        repo.note_ticket_message(s, ctx.ticket.id, ctx.now)
    elif ctx.ticket is not None and decision.spam:  # opened closed: say why in its history
        repo.add_ticket_event(
            s,
            ticket_id=ctx.ticket.id,
            message_pk=ctx.message_pk,
            at=ctx.now,
            event="closed",
            state="closed",
            actor=SPAM_FILTER,
            detail=decision.reason,
        )


SPAM_FILTER = "spam filter"  # the actor of a ticket opened closed as spam, in its history
# Our own mail to staff and managers: a reply to one is talk inside the office, never the answer.
NOTICE_KINDS = ("notice", "digest")


def _staff_kind(ctx: MailContext, own: frozenset[str]) -> tuple[str, str]:
    """(kind, direction) of an officer's mail: an answer goes out to people; a command or a
    note stays inside the office."""
    if ctx.command is not None:
        return "staff_command", "in"
    if staff.goes_outside(ctx.mail, own):
        return "staff_answer", "out"
    return "staff_note", "in"


def step_lifecycle(p: Pipeline, ctx: MailContext, s: Session) -> None:
    """Move the ticket: an officer's answer or command, or the requester writing again."""
    ticket, mail, decision = ctx.ticket, ctx.mail, ctx.decision
    if ticket is None or ctx.new_ticket or decision is None or ctx.rating is not None:
        return  # a rating never moves its ticket
    officer = ctx.officer
    if officer is not None:
        if ctx.command is not None:
            change = lifecycle.staff_command(ticket.state, ctx.command)
        elif staff.goes_outside(mail, p.own_addresses):
            change = lifecycle.staff_answered(ticket.state)
        elif repo.our_mail_among(s, ctx.office.code, NOTICE_KINDS, [*mail.in_reply_to, *mail.references]):
            change = lifecycle.staff_comment(ticket.state)  # a head answering a notice: not the answer
        else:
            change = lifecycle.staff_note(ticket.state)
        actor = officer.email
    elif decision.kind is MailKind.REQUEST and ctx.reopen:
        change, actor = lifecycle.requester_reopened(), mail.from_.email if mail.from_ else ""
    elif decision.kind is MailKind.REQUEST:
        thanks = ticket.state == lifecycle.ANSWERED and staff.is_thanks(mail.text)
        found = lifecycle.requester_wrote(ticket.state, thanks)
        if found is None:
            return
        change, actor = found, mail.from_.email if mail.from_ else ""
    else:
        return
    due = None
    days = None
    if change.fresh_clock or change.resume:  # a complaint keeps its own promise
        days = aftercare_steps.promise_days(s, ctx.office, ticket.id)
    if change.fresh_clock:
        ctx.due = due = sla.due_at(ctx.office, ctx.received_at, working_days=days)
    elif change.resume:  # the deadline moves by the office time spent waiting
        received, history = repo.ticket_clock(s, ticket.id)
        history.append((ctx.received_at, change.event, change.state))
        start, paused = lifecycle.clock_basis(received, history, ctx.received_at)
        ctx.due = due = sla.due_at(ctx.office, start, working_days=days, paused=paused)
    repo.change_ticket(
        s,
        ticket.id,
        state=change.state,
        at=ctx.received_at,
        resolution=change.resolution,
        due_at=due,
        officer=officer.email if officer is not None else None,
        first_response=change.first_response,
        fresh_clock=change.fresh_clock,
    )
    repo.add_ticket_event(
        s,
        ticket_id=ticket.id,
        message_pk=ctx.message_pk,
        at=ctx.received_at,
        event=change.event,
        state=change.state,
        actor=actor,
        detail=change.detail,
    )
    ctx.change = change


def _open_ticket(s: Session, ctx: MailContext) -> repo.TicketRef:
    office, mail, now = ctx.office, ctx.mail, ctx.now
    year = now.astimezone(office.tz).year
    ref = f"PST-{office.code}-{year}-{repo.next_ticket_seq(s, office.code, year):05d}"
    requester = rules.acknowledgement_recipient(mail) or ""
    ctx.language = rules.language(mail)
    days = office.complaint_sla_working_days if ctx.complaint else None
    ctx.due = sla.due_at(office, ctx.received_at, working_days=days)
    spam = ctx.decision is not None and ctx.decision.spam
    state = "closed" if spam else "open"
    settled = {"resolution": "spam", "state_changed_at": now, "closed_at": now} if spam else {}
    ticket_id = repo.add_ticket(
        s,
        **settled,
        kind="complaint" if ctx.complaint else "request",
        ref=ref,
        office_code=office.code,
        state=state,
        requester_email=requester,
        requester_name=mail.from_.name if mail.from_ else "",
        subject=mail.subject,
        subject_key=normalise_subject(mail.subject),
        language=ctx.language,
        received_at=ctx.received_at,
        due_at=ctx.due,
        last_message_at=now,
        message_count=1,
        created_at=now,
    )
    return repo.TicketRef(ticket_id, ref, state, requester)


def step_relate(p: Pipeline, ctx: MailContext, s: Session) -> None:
    """The ticket's people and links: the mail's From/To/Cc (not our addresses) become
    participants (officers as staff), a new ticket opened from another is linked to it. (A
    reopened ticket's state and fresh deadline are the lifecycle step's.)"""
    ticket = ctx.ticket
    if ticket is None:
        return
    if ctx.link_to is not None and ctx.new_ticket:
        linked, reason = ctx.link_to
        repo.link_tickets(s, ticket.id, linked.id, reason, ctx.now)
    roles = dict.fromkeys(people_on(ctx.mail, p.own_addresses), "cc")
    if ctx.new_ticket and ticket.requester_email:
        roles[ticket.requester_email] = "requester"
    if ctx.officer is not None and ctx.officer.email not in p.own_addresses:
        roles[ctx.officer.email] = "staff"
    repo.add_participants(s, ticket.id, roles, ctx.now, known=ctx.participants or ())


def step_acknowledge(p: Pipeline, ctx: MailContext, s: Session) -> None:
    """A new request's acknowledgement; a complaint's (new, or made in a conversation: once)."""
    decision, ticket = ctx.decision, ctx.ticket
    if not ((ctx.new_ticket or ctx.complaint_in_conversation) and ticket and decision):
        return
    if not decision.acknowledge:  # e.g. X-Auto-Response-Suppress, an office address: say why
        ctx.ack_withheld = decision.reason
        return
    if ctx.early_answers and not ctx.complaint:  # "we will answer by …" after the answer: no
        ctx.ack_withheld = "already answered by staff before the request was read"
        return
    to = aftercare_steps.complaint_recipient(ctx) if ctx.complaint else ticket.requester_email
    ctx.ack_withheld = guard.refusal(s, ctx.office.code, to, p.own_addresses) or guard.rate_refusal(
        s, ctx.office.code, to, ctx.now, ("ack",), p.settings.acknowledgement.max_per_sender_per_hour
    )
    if ctx.ack_withheld:
        return
    assert ctx.due is not None
    # Sent at once, unless its mail came long ago and it is night in the office (quiet.py)
    ack = p.settings.acknowledgement
    received = quiet.received_time(ctx.fetched.received_at, ctx.mail.date, ctx.now)
    quiet_after = received + timedelta(minutes=ack.immediate_within_minutes)
    ctx.ack_held_until = quiet.hold_until(quiet_after, ctx.now, ctx.office.tz, ack.quiet_hours)
    promise, late = ctx.due, ctx.due <= ctx.now
    if late:  # read after its deadline: the ticket stays overdue, the person gets a day still ahead
        days = ctx.office.complaint_sla_working_days if ctx.complaint else None
        promise = sla.due_at(ctx.office, ctx.now, working_days=days)
    out = p.renderer.acknowledgement(
        ctx.office,
        ticket.ref,
        ctx.mail,
        to,
        ctx.language,
        promise,
        ctx.received_at,
        ctx.ack_held_until or ctx.now,  # its Date: when it goes (a held one: the morning, not 03:00)
        template="ack_complaint" if ctx.complaint else "ack",
        thread=outlook_reply_headers(ctx.hints, ctx.mail.subject, ctx.now, secrets.randbelow(256)),
        late=late,
    )
    why = "acknowledgement of a complaint in a conversation" if ctx.complaint_in_conversation else ""
    reason = why or "acknowledgement of a new request"
    enqueue(s, ctx.office, ticket.id, MailKind.ACK, reason, out, ctx.now, ctx.ack_held_until, quiet_after)
    ctx.outgoing = out


def save_cursor(ctx: MailContext, s: Session) -> None:
    """Every mail up to this one is done: committed with them, the cursor never runs ahead."""
    f = ctx.fetched
    repo.save_cursor(s, f.office_code, f.mailbox, f.uidvalidity, f.uid, ctx.now)


BEFORE_TX: tuple[tuple[str, Step], ...] = (
    ("parse", step_parse),
    ("trim", step_trim),
    ("classify", step_classify),
    ("identify", step_identify),
    ("report", step_report),
    ("complaint", aftercare_steps.step_complaint),
)
IN_TX: tuple[tuple[str, TxStep], ...] = (
    ("dedupe", step_dedupe),
    ("thread", step_thread),
    ("flags", step_flags),
    ("rating", aftercare_steps.step_rating),
    ("store", step_store),
    ("early_answer", staff_steps.step_early_answer),
    ("relate", step_relate),
    ("lifecycle", step_lifecycle),
    ("complaint_followup", aftercare_steps.step_complaint_followup),
    ("adopt_answers", staff_steps.step_adopt_answers),
    ("acknowledge", step_acknowledge),
    ("notify_head", aftercare_steps.step_notify_head),
)


class Pipeline:
    """Runs the steps for fetched mail; safe to share between mailbox threads."""

    def __init__(self, settings: Settings, engine: Engine, renderer: Renderer, clock: Clock) -> None:
        self.settings, self.engine, self.renderer, self.clock = settings, engine, renderer, clock
        self.own_addresses = frozenset(o.email for o in settings.offices)
        self.own_addresses |= {a for o in settings.offices for a in o.complaint_addresses}

    def process(self, fetched: FetchedMail) -> Outcome:
        """Process one fetched mail to the end; see process_batch."""
        return self.process_batch([fetched])[0]

    def process_batch(self, batch: Sequence[FetchedMail], finish: Finish | None = None) -> list[Outcome]:
        """Process mails (of one mailbox, in UID order) to the end; returns what happened to each.

        The pure steps run first; then one transaction takes the whole batch, each mail in its
        own SAVEPOINT, so a mail is stored entirely or not at all and the cursor moves with it,
        while the commit (the costly part) is shared. Raises only if the database itself fails:
        then nothing of the batch is committed, the cursor has not moved and the mail comes again.
        `finish(session, contexts, outcomes)`, when given, runs in that transaction instead of
        moving the cursor (a dead letter retried: the cursor is past it and must not go back).
        """
        now = self.clock.now()
        contexts = [self._context(fetched, now) for fetched in batch]
        for ctx in contexts:
            self._run_pure_steps(ctx)
        try:  # fast path: no savepoints, as long as no mail fails
            with db.transaction(self.engine) as s:
                outcomes = [self._store_optimistic(ctx, s) for ctx in contexts]
                _close(s, contexts, outcomes, finish)
        except _MailFailed:  # rolled back; again, each mail in its own savepoint
            for ctx in contexts:
                ctx.reset_transaction_state()
            with db.transaction(self.engine) as s:
                outcomes = [self._store(ctx, s) for ctx in contexts]
                _close(s, contexts, outcomes, finish)
        for ctx, outcome in zip(contexts, outcomes, strict=True):
            self._report(ctx, outcome)
        return outcomes

    def _context(self, fetched: FetchedMail, now: datetime) -> MailContext:
        office = self.settings.office(fetched.office_code)
        received = fetched.received_at if fetched.received_at and fetched.received_at <= now else now
        return MailContext(fetched, office, now, received)

    def _run_pure_steps(self, ctx: MailContext) -> None:
        for ctx.step, fn in BEFORE_TX:
            try:
                fn(self, ctx)
            except Exception as exc:
                ctx.failure = exc
                return

    def _store_optimistic(self, ctx: MailContext, s: Session) -> Outcome:
        if ctx.failure is not None:  # parse/classify failed: nothing was written for it
            self._dead_letter(ctx, s)
            return Outcome.DEAD_LETTER
        try:
            for ctx.step, tx_fn in IN_TX:
                tx_fn(self, ctx, s)
        except Duplicate:  # raised before anything of this mail is written
            return Outcome.DUPLICATE
        except Exception as exc:
            if _is_database_failure(exc):
                raise
            raise _MailFailed from exc
        return _outcome(ctx)

    def _store(self, ctx: MailContext, s: Session) -> Outcome:
        if ctx.failure is None:
            try:
                with s.begin_nested():
                    for ctx.step, tx_fn in IN_TX:
                        tx_fn(self, ctx, s)
                return _outcome(ctx)
            except Duplicate:
                return Outcome.DUPLICATE
            except Exception as exc:
                if _is_database_failure(exc):
                    raise
                ctx.failure = exc
        ctx.reset_transaction_state()  # rolled back with the savepoint
        with s.begin_nested():
            self._dead_letter(ctx, s)
        return Outcome.DEAD_LETTER

    def _report(self, ctx: MailContext, outcome: Outcome) -> None:
        """Log what happened to one mail, with its context, once it is committed."""
        f, decision = ctx.fetched, ctx.decision
        with structlog.contextvars.bound_contextvars(
            office=f.office_code,
            mailbox=f.mailbox,
            uid=f.uid,
            message_id=ctx.parsed.message_id if ctx.parsed else None,
            ticket=ctx.ticket.ref if ctx.ticket else None,
        ):
            for warning in ctx.warnings:
                logger.warning("staff_mail_not_taken", reason=warning)
            if ctx.change is not None:
                c = ctx.change
                by = ctx.officer.email if ctx.officer else (ctx.mail.from_.email if ctx.mail.from_ else "")
                logger.info("ticket_changed", change=c.event, state=c.state, by=by, detail=c.detail or None)
            if outcome is Outcome.DEAD_LETTER:
                error = f"{type(ctx.failure).__name__}: {ctx.failure}"
                logger.error("mail_dead_lettered", step=ctx.step, error=error, exc_info=ctx.failure)
            elif outcome is Outcome.DUPLICATE and ctx.own_copy:
                logger.info("own_mail_skipped", reason=ctx.own_copy)
            elif outcome is Outcome.DUPLICATE:
                logger.info("mail_duplicate", dedupe_key=ctx.dedupe_key)
            elif decision is None:
                return
            elif outcome is Outcome.TICKET_CREATED:
                linked, reason = (ctx.link_to[0].ref, ctx.link_to[1]) if ctx.link_to else (None, None)
                logger.info(
                    "ticket_created",
                    kind=decision.kind,
                    ack_queued=ctx.outgoing is not None,
                    ack_held_until=ctx.ack_held_until.astimezone(ctx.office.tz).isoformat(timespec="minutes")
                    if ctx.ack_held_until
                    else None,
                    linked_to=linked,
                    link_reason=reason,
                )
            elif outcome is Outcome.FOLLOWUP:
                how = ctx.match.how if ctx.match else ""
                officer = ctx.officer.formatted() if ctx.officer else None
                logger.info(
                    "followup_stored",
                    kind=decision.kind,
                    matched_by=how,
                    officer=officer,
                    reopened=ctx.reopen,
                )
            else:
                logger.info("mail_recorded", kind=decision.kind, reason=decision.reason)
            if outcome not in (Outcome.DEAD_LETTER, Outcome.DUPLICATE):
                _report_flags(ctx)
                aftercare_steps.report(ctx, outcome is Outcome.TICKET_CREATED)
                staff_steps.report(ctx)

    def _dead_letter(self, ctx: MailContext, s: Session) -> None:
        f = ctx.fetched
        repo.add_dead_letter(
            s,
            office_code=f.office_code,
            folder=f.mailbox,
            uidvalidity=f.uidvalidity,
            uid=f.uid,
            step=ctx.step,
            error=f"{type(ctx.failure).__name__}: {ctx.failure}",
            raw_sha256=ctx.raw_sha256 or hashlib.sha256(f.raw).hexdigest(),
            raw=f.raw,
            created_at=ctx.now,
        )


def _report_flags(ctx: MailContext) -> None:
    """Log what loop protection did for one mail (inside _report's bound context)."""
    for address, flag, reason in ctx.flagged:
        logger.warning("address_flagged", address=address, flag=flag, reason=reason)
    for address in ctx.unflagged:
        logger.info("address_unflagged", address=address, reason="it wrote to the office again")
    if ctx.ack_withheld:
        logger.info("ack_withheld", reason=ctx.ack_withheld)


def _close(
    s: Session, contexts: Sequence[MailContext], outcomes: list[Outcome], finish: Finish | None
) -> None:
    """The batch's last write: the cursor moves past it, or the caller's `finish`."""
    if finish is None:
        save_cursor(contexts[-1], s)
    else:
        finish(s, contexts, outcomes)


class _MailFailed(Exception):
    """A mail failed inside the optimistic batch: roll it back and redo the batch with savepoints."""


def _outcome(ctx: MailContext) -> Outcome:
    if ctx.new_ticket:
        return Outcome.TICKET_CREATED
    return Outcome.FOLLOWUP if ctx.ticket is not None else Outcome.RECORDED


def _is_database_failure(exc: Exception) -> bool:
    """Connection-level database errors are not the mail's fault: let the caller retry."""
    from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

    return isinstance(exc, OperationalError | DisconnectionError | InterfaceError)
