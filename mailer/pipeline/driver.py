"""The per-mail driver: ordered tuples of named steps (GNU Mailman's pipeline habit) and the
short loop that runs them; the steps live in the modules beside it.

    reading.py     parse → trim → classify → identify → report → complaint      pure: a Reading
      → [ thread.py       dedupe → thread → flags
          ratings.py      → rating
          store.py        → store
          sent_folder.py  → early_answer
          store.py        → relate → lifecycle
          complaints.py   → complaint_followup
          sent_folder.py  → adopt_answers
          acknowledge.py  → acknowledge
          ratings.py      → ask_rating
          complaints.py   → notify_head
          refusal.py      → refuse_command → confirm_command
          store.py        → cursor ]                                  one transaction: an Attempt

The pure steps build the mail's Reading (context.py), which no later step can change. The
bracketed steps share one database transaction, so the raw mail, the ticket, the rendered
acknowledgement (an outbox row) and the mailbox cursor are committed together or not at all;
what they learn goes into an Attempt made fresh for every try (the optimistic batch, then the
mail's own savepoint), so a retried mail is processed as if the failed try never happened.
A step that raises sends the mail to the dead letters, kept whole with the step's name and
the reason, and the cursor moves on: one bad mail never stops the others. `Duplicate` is the
one control-flow signal, caught only here (also raised for the Sent folder's copy of a mail
we sent ourselves: sent_folder.own_copy).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime

import structlog
from sqlalchemy import Engine
from sqlmodel import Session

from mailer import log
from mailer.clock import Clock
from mailer.delivery.render import Renderer
from mailer.model import FetchedMail, Outcome
from mailer.pipeline import acknowledge, complaints, ratings, reading, refusal, sent_folder, store, thread
from mailer.pipeline.context import Attempt, Duplicate, MailContext, Reading, Setup
from mailer.settings import Settings
from storage import db
from storage.dead_letters import add_dead_letter

logger = log.get(__name__)

PureStep = Callable[[Setup, Reading], Reading]
TxStep = Callable[[Setup, Reading, Attempt, Session], None]
Finish = Callable[[Session, Sequence[MailContext], Sequence[Outcome]], None]

BEFORE_TX: tuple[tuple[str, PureStep], ...] = (
    ("parse", reading.step_parse),
    ("trim", reading.step_trim),
    ("classify", reading.step_classify),
    ("identify", reading.step_identify),
    ("report", reading.step_report),
    ("complaint", reading.step_complaint),
)
IN_TX: tuple[tuple[str, TxStep], ...] = (
    ("dedupe", thread.step_dedupe),
    ("thread", thread.step_thread),
    ("flags", thread.step_flags),
    ("rating", ratings.step_rating),
    ("store", store.step_store),
    ("early_answer", sent_folder.step_early_answer),
    ("relate", store.step_relate),
    ("lifecycle", store.step_lifecycle),
    ("complaint_followup", complaints.step_complaint_followup),
    ("adopt_answers", sent_folder.step_adopt_answers),
    ("acknowledge", acknowledge.step_acknowledge),
    ("ask_rating", ratings.step_ask_rating),
    ("notify_head", complaints.step_notify_head),
    ("refuse_command", refusal.step_refuse_command),
    ("confirm_command", refusal.step_confirm_command),
)


class Pipeline:
    """Runs the steps for fetched mail; safe to share between mailbox threads."""

    def __init__(self, settings: Settings, engine: Engine, renderer: Renderer, clock: Clock) -> None:
        self.settings, self.engine, self.renderer, self.clock = settings, engine, renderer, clock
        self.own_addresses = settings.own_addresses
        self.setup = Setup(settings, renderer, self.own_addresses)

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
        contexts = [self._read(fetched, now) for fetched in batch]
        try:  # fast path: no savepoints, as long as no mail fails
            with db.transaction(self.engine) as s:
                outcomes = [self._store_optimistic(ctx, s) for ctx in contexts]
                _close(s, contexts, outcomes, finish)
        except _MailFailed:  # rolled back; again, each mail in its own savepoint, a fresh Attempt
            with db.transaction(self.engine) as s:
                outcomes = [self._store(ctx, s) for ctx in contexts]
                _close(s, contexts, outcomes, finish)
        for ctx, outcome in zip(contexts, outcomes, strict=True):
            self._report(ctx, outcome)
        return outcomes

    def _read(self, fetched: FetchedMail, now: datetime) -> MailContext:
        """The pure steps, up to the first that fails (kept in ctx.failure)."""
        office = self.settings.office(fetched.office_code)
        received = fetched.received_at if fetched.received_at and fetched.received_at <= now else now
        ctx = MailContext(Reading(fetched, office, now, received))
        for ctx.step, fn in BEFORE_TX:
            try:
                ctx.read = fn(self.setup, ctx.read)
            except Exception as exc:
                ctx.failure = exc
                break
        return ctx

    def _attempt(self, ctx: MailContext, s: Session) -> None:
        """The steps in the transaction, on a fresh Attempt: nothing an earlier one learnt
        (rolled back with its writes) carries over."""
        ctx.tx = tx = Attempt.of(ctx.read)
        for ctx.step, fn in IN_TX:
            fn(self.setup, ctx.read, tx, s)

    def _store_optimistic(self, ctx: MailContext, s: Session) -> Outcome:
        if ctx.failure is not None:  # parse/classify failed: nothing was written for it
            self._dead_letter(ctx, s)
            return Outcome.DEAD_LETTER
        try:
            self._attempt(ctx, s)
        except Duplicate:  # raised before anything of this mail is written
            return Outcome.DUPLICATE
        except Exception as exc:
            if _is_database_failure(exc):
                raise
            raise _MailFailed from exc
        return _outcome(ctx.tx)

    def _store(self, ctx: MailContext, s: Session) -> Outcome:
        if ctx.failure is None:
            try:
                with s.begin_nested():
                    self._attempt(ctx, s)
                return _outcome(ctx.tx)
            except Duplicate:
                return Outcome.DUPLICATE
            except Exception as exc:
                if _is_database_failure(exc):
                    raise
                ctx.failure = exc
        ctx.tx = Attempt.of(ctx.read)  # what the attempt learnt was rolled back with the savepoint
        with s.begin_nested():
            self._dead_letter(ctx, s)
        return Outcome.DEAD_LETTER

    def _report(self, ctx: MailContext, outcome: Outcome) -> None:
        """Log what happened to one mail, with its context, once it is committed."""
        read, tx = ctx.read, ctx.tx
        f, decision = read.fetched, read.decision
        with structlog.contextvars.bound_contextvars(
            office=f.office_code,
            mailbox=f.mailbox,
            uid=f.uid,
            message_id=read.parsed.message_id if read.parsed else None,
            ticket=tx.ticket.ref if tx.ticket else None,
        ):
            for warning in (*read.warnings, *tx.warnings):
                logger.warning("staff_mail_not_taken", reason=warning)
            if tx.change is not None:
                c = tx.change
                by = tx.officer.email if tx.officer else (read.mail.from_.email if read.mail.from_ else "")
                logger.info("ticket_changed", change=c.event, state=c.state, by=by, detail=c.detail or None)
            if outcome is Outcome.DEAD_LETTER:
                error = f"{type(ctx.failure).__name__}: {ctx.failure}"
                logger.error("mail_dead_lettered", step=ctx.step, error=error, exc_info=ctx.failure)
            elif outcome is Outcome.DUPLICATE and tx.own_copy:
                logger.info("own_mail_skipped", reason=tx.own_copy)
            elif outcome is Outcome.DUPLICATE:
                logger.info("mail_duplicate", dedupe_key=read.dedupe_key)
            elif decision is None:
                return
            elif outcome is Outcome.TICKET_CREATED:
                linked, reason = (tx.link_to[0].ref, tx.link_to[1]) if tx.link_to else (None, None)
                logger.info(
                    "ticket_created",
                    kind=decision.kind,
                    ack_queued=tx.outgoing is not None,
                    ack_held_until=tx.ack_held_until.astimezone(read.office.tz).isoformat(timespec="minutes")
                    if tx.ack_held_until
                    else None,
                    linked_to=linked,
                    link_reason=reason,
                )
            elif outcome is Outcome.FOLLOWUP:
                logger.info(
                    "followup_stored",
                    kind=decision.kind,
                    matched_by=tx.match.how if tx.match else "",
                    officer=tx.officer.formatted() if tx.officer else None,
                    reopened=tx.reopen,
                )
            else:
                logger.info("mail_recorded", kind=decision.kind, reason=decision.reason)
            if outcome not in (Outcome.DEAD_LETTER, Outcome.DUPLICATE):
                _report_flags(tx)
                ratings.report(tx)
                complaints.report(read, tx, outcome is Outcome.TICKET_CREATED)
                sent_folder.report(tx)
                refusal.report(read, tx)

    def _dead_letter(self, ctx: MailContext, s: Session) -> None:
        f = ctx.read.fetched
        add_dead_letter(
            s,
            office_code=f.office_code,
            folder=f.mailbox,
            uidvalidity=f.uidvalidity,
            uid=f.uid,
            step=ctx.step,
            error=f"{type(ctx.failure).__name__}: {ctx.failure}",
            raw_sha256=ctx.read.raw_sha256 or hashlib.sha256(f.raw).hexdigest(),
            raw=f.raw,
            created_at=ctx.read.now,
        )


def _report_flags(tx: Attempt) -> None:
    """Log what loop protection did for one mail (inside _report's bound context)."""
    for address, flag, reason in tx.flagged:
        logger.warning("address_flagged", address=address, flag=flag, reason=reason)
    for address in tx.unflagged:
        logger.info("address_unflagged", address=address, reason="it wrote to the office again")
    if tx.report_ignored:
        logger.warning("report_ignored", reason=tx.report_ignored)
    if tx.ack_withheld:
        logger.info("ack_withheld", reason=tx.ack_withheld)
    if tx.reply_to_ignored:
        ignored = list(tx.reply_to_ignored)
        logger.info("reply_to_ignored", reply_to=ignored, reason="not on the domain of From")
    if tx.notice_withheld:
        logger.warning("complaint_notice_withheld", reason=tx.notice_withheld)


def _close(
    s: Session, contexts: Sequence[MailContext], outcomes: list[Outcome], finish: Finish | None
) -> None:
    """The batch's last write: the cursor moves past it, or the caller's `finish`."""
    if finish is None:
        store.save_cursor(contexts[-1].read, s)
    else:
        finish(s, contexts, outcomes)


class _MailFailed(Exception):
    """A mail failed inside the optimistic batch: roll it back and redo the batch with savepoints."""


def _outcome(tx: Attempt) -> Outcome:
    if tx.new_ticket:
        return Outcome.TICKET_CREATED
    return Outcome.FOLLOWUP if tx.ticket is not None else Outcome.RECORDED


def _is_database_failure(exc: Exception) -> bool:
    """Connection-level database errors are not the mail's fault: let the caller retry."""
    from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

    return isinstance(exc, OperationalError | DisconnectionError | InterfaceError)
