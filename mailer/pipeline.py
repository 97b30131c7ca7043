"""The per-mail driver: a named, ordered tuple of steps (GNU Mailman's pipeline habit).

    parse → trim → classify → [ dedupe → thread → store → acknowledge → cursor ]  one transaction

The bracketed steps share one database transaction, so the raw mail, the ticket, the
rendered acknowledgement (an outbox row) and the mailbox cursor are committed together or
not at all. A step that raises sends the mail to the dead letters, kept whole with the step's
name and the reason, and the cursor moves on: one bad mail never stops the others.
`Duplicate` is the one control-flow signal, caught only here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import structlog
from sqlalchemy import Engine
from sqlmodel import Session

from mailer import log, rules, sla
from mailer.attachments import attachment_rows
from mailer.clock import Clock
from mailer.model import Decision, FetchedMail, MailKind, ParsedMail
from mailer.outbox import enqueue
from mailer.parse import parse
from mailer.render import Outgoing, Renderer
from mailer.settings import Office, Settings
from mailer.threader import ThreadMatch, find_ticket, normalise_subject
from mailer.trim import trim
from storage import db, repo

logger = log.get(__name__)


class Outcome(StrEnum):
    """What processing one mail did."""

    TICKET_CREATED = "ticket_created"
    FOLLOWUP = "followup"
    RECORDED = "recorded"  # kept, not on a ticket (auto-reply, bounce, list mail)
    DUPLICATE = "duplicate"
    DEAD_LETTER = "dead_letter"


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

    def reset_transaction_state(self) -> None:
        """Forget what the transactional steps learnt (their writes were rolled back)."""
        self.match, self.ticket, self.new_ticket, self.outgoing = None, None, False, None

    @property
    def mail(self) -> ParsedMail:
        assert self.parsed is not None, "parse step has not run"
        return self.parsed


Step = Callable[["Pipeline", MailContext], None]
TxStep = Callable[["Pipeline", MailContext, Session], None]


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


def step_dedupe(p: Pipeline, ctx: MailContext, s: Session) -> None:
    if repo.message_exists(s, ctx.office.code, ctx.dedupe_key):
        raise Duplicate(ctx.dedupe_key)


def step_thread(p: Pipeline, ctx: MailContext, s: Session) -> None:
    window = timedelta(days=p.settings.threading.subject_window_days)
    ctx.match = find_ticket(s, ctx.office.code, ctx.mail, ctx.now, window)
    if ctx.match is not None:
        ctx.ticket = ctx.match.ticket


def step_store(p: Pipeline, ctx: MailContext, s: Session) -> None:
    mail, decision, office = ctx.mail, ctx.decision, ctx.office
    assert decision is not None
    if ctx.ticket is None and decision.kind is MailKind.REQUEST:
        ctx.ticket, ctx.new_ticket = _open_ticket(s, ctx), True
    kind = str(decision.kind)
    if decision.kind is MailKind.REQUEST and not ctx.new_ticket:
        kind = "followup"
    message_pk = repo.add_message(
        s,
        office_code=office.code,
        ticket_id=ctx.ticket.id if ctx.ticket else None,
        direction="in",
        kind=kind,
        reason=decision.reason,
        message_id=mail.message_id,
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
        rows = attachment_rows(message_pk, mail.attachments, p.settings.attachments.max_bytes)
        repo.add_attachments(s, rows)
    if ctx.ticket is not None and not ctx.new_ticket:  # a new ticket counts its first mail itself
        repo.note_ticket_message(s, ctx.ticket.id, ctx.now)


def _open_ticket(s: Session, ctx: MailContext) -> repo.TicketRef:
    office, mail, now = ctx.office, ctx.mail, ctx.now
    year = now.astimezone(office.tz).year
    ref = f"PST-{office.code}-{year}-{repo.next_ticket_seq(s, office.code, year):05d}"
    requester = rules.acknowledgement_recipient(mail) or ""
    ctx.language = rules.language(mail)
    ctx.due = sla.due_at(office, ctx.received_at)
    ticket_id = repo.add_ticket(
        s,
        ref=ref,
        office_code=office.code,
        state="open",
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
    return repo.TicketRef(ticket_id, ref, "open", requester)


def step_acknowledge(p: Pipeline, ctx: MailContext, s: Session) -> None:
    decision, ticket = ctx.decision, ctx.ticket
    if not (ctx.new_ticket and ticket and decision and decision.acknowledge):
        return
    to = ticket.requester_email
    if not rules.answerable(to) or to in p.own_addresses:
        logger.info("ack_skipped", reason="no outside address we can answer", to=to)
        return
    assert ctx.due is not None
    out = p.renderer.acknowledgement(
        ctx.office, ticket.ref, ctx.mail, to, ctx.language, ctx.due, ctx.received_at, ctx.now
    )
    enqueue(s, ctx.office, ticket.id, "ack", "acknowledgement of a new request", out, ctx.now)
    ctx.outgoing = out


def save_cursor(ctx: MailContext, s: Session) -> None:
    """Every mail up to this one is done: committed with them, the cursor never runs ahead."""
    f = ctx.fetched
    repo.save_cursor(s, f.office_code, f.mailbox, f.uidvalidity, f.uid, ctx.now)


BEFORE_TX: tuple[tuple[str, Step], ...] = (
    ("parse", step_parse),
    ("trim", step_trim),
    ("classify", step_classify),
)
IN_TX: tuple[tuple[str, TxStep], ...] = (
    ("dedupe", step_dedupe),
    ("thread", step_thread),
    ("store", step_store),
    ("acknowledge", step_acknowledge),
)


class Pipeline:
    """Runs the steps for fetched mail; safe to share between mailbox threads."""

    def __init__(self, settings: Settings, engine: Engine, renderer: Renderer, clock: Clock) -> None:
        self.settings, self.engine, self.renderer, self.clock = settings, engine, renderer, clock
        self.own_addresses = frozenset(o.email for o in settings.offices)

    def process(self, fetched: FetchedMail) -> Outcome:
        """Process one fetched mail to the end; see process_batch."""
        return self.process_batch([fetched])[0]

    def process_batch(self, batch: Sequence[FetchedMail]) -> list[Outcome]:
        """Process mails (of one mailbox, in UID order) to the end; returns what happened to each.

        The pure steps run first; then one transaction takes the whole batch, each mail in its
        own SAVEPOINT, so a mail is stored entirely or not at all and the cursor moves with it,
        while the commit (the costly part) is shared. Raises only if the database itself fails:
        then nothing of the batch is committed, the cursor has not moved and the mail comes again.
        """
        now = self.clock.now()
        contexts = [self._context(fetched, now) for fetched in batch]
        for ctx in contexts:
            self._run_pure_steps(ctx)
        try:  # fast path: no savepoints, as long as no mail fails
            with db.transaction(self.engine) as s:
                outcomes = [self._store_optimistic(ctx, s) for ctx in contexts]
                save_cursor(contexts[-1], s)
        except _MailFailed:  # rolled back; again, each mail in its own savepoint
            for ctx in contexts:
                ctx.reset_transaction_state()
            with db.transaction(self.engine) as s:
                outcomes = [self._store(ctx, s) for ctx in contexts]
                save_cursor(contexts[-1], s)
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
            if outcome is Outcome.DEAD_LETTER:
                error = f"{type(ctx.failure).__name__}: {ctx.failure}"
                logger.error("mail_dead_lettered", step=ctx.step, error=error, exc_info=ctx.failure)
            elif outcome is Outcome.DUPLICATE:
                logger.info("mail_duplicate", dedupe_key=ctx.dedupe_key)
            elif decision is None:
                return
            elif outcome is Outcome.TICKET_CREATED:
                logger.info("ticket_created", kind=decision.kind, ack_queued=ctx.outgoing is not None)
            elif outcome is Outcome.FOLLOWUP:
                how = ctx.match.how if ctx.match else ""
                logger.info("followup_stored", kind=decision.kind, matched_by=how)
            else:
                logger.info("mail_recorded", kind=decision.kind, reason=decision.reason)

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
