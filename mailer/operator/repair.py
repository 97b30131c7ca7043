"""What an operator does when something went wrong (`mailer dead-letters retry`, `mailer
outbox retry`); what there is to see is status.py.

A dead letter retried runs through the whole pipeline again as if fetched now from its
(office, folder, UIDVALIDITY, UID), its receipt time the time it was first fetched (the SLA
clock counts the delay against the office, whose fault it was). The pipeline's dedupe holds:
a mail stored meanwhile (fetched again after a resync) is recognised and not stored twice.
The mailbox cursor is not touched (it is past the mail already). Success and the dead letter
marked resolved (kept, with what became of the mail) commit together; a failure leaves it
unresolved with the newest step and reason. A new request gets its acknowledgement like any
other (the requester still needs the ticket number; the guard and the per-sender limit apply,
and `mailer run` sends it, or the next `mailer once`).

A dead letter that will never go through (junk, a test mail, a mail handled by hand) is
dismissed with the operator's reason: kept whole, marked resolved, no longer counted by
`mailer status`.

A failed delivery put back is due at once with its attempts counted afresh; a mail sent or
still in the queue is refused (sending it again would be a duplicate).
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session

from mailer import log
from mailer.clock import Clock
from mailer.delivery.render import Renderer
from mailer.model import FetchedMail, Outcome, Role
from mailer.pipeline.context import MailContext
from mailer.pipeline.driver import Pipeline
from mailer.settings import Settings
from storage import db
from storage.dead_letters import dead_letter, dead_letters, note_dead_letter_retry, resolve_dead_letter
from storage.messages import stored_mail_ticket
from storage.outbox import deliveries, delivery, release_failed_delivery
from storage.vocabulary import OutboxState, ShownOutboxState

logger = log.get(__name__)


def operator_name() -> str:
    """Who runs the command, for the log (the sudo caller if any)."""
    return os.environ.get("SUDO_USER") or getpass.getuser()


@dataclass(frozen=True)
class Retried:
    """What a retry of one dead letter did: `resolved` (with what became of the mail), `failed`
    (the step and reason now), `skipped` (already resolved, or nothing to retry)."""

    dead_letter_id: int
    result: str  # resolved | failed | skipped
    detail: str

    def line(self) -> str:
        return f"dead letter {self.dead_letter_id}: {self.result}: {self.detail}"


def retry_dead_letter(
    settings: Settings, engine: Engine, clock: Clock, dead_letter_id: int, pipeline: Pipeline | None = None
) -> Retried:
    """Run one kept mail through the pipeline again (see the module's docstring)."""
    with db.reading(engine) as s:
        dead = dead_letter(s, dead_letter_id)
    if dead is None or dead.id is None:
        return Retried(dead_letter_id, "skipped", "no such dead letter")
    if dead.resolved_at is not None:
        return Retried(
            dead.id, "skipped", f"already resolved {dead.resolved_at:%Y-%m-%d %H:%M} UTC: {dead.resolution}"
        )
    try:
        office = settings.office(dead.office_code)
    except KeyError:
        return Retried(dead.id, "skipped", f"office {dead.office_code} is not in {settings.file}")
    role = Role.INBOX if dead.folder == office.imap.folder else Role.SENT
    if office.complaint_mailbox is not None and dead.folder == office.complaint_mailbox.key:
        role = Role.COMPLAINT
    fetched = FetchedMail(
        dead.office_code, dead.folder, dead.uidvalidity, dead.uid, dead.raw, dead.created_at, role
    )
    found: list[str] = []
    ticket: list[str] = []
    dead_id = dead.id

    def finish(s: Session, contexts: Sequence[MailContext], outcomes: Sequence[Outcome]) -> None:
        ctx, outcome = contexts[0], outcomes[0]
        note_dead_letter_retry(s, dead_id)
        if ctx.tx.ticket is not None:
            ticket.append(ctx.tx.ticket.ref)
        if outcome is Outcome.DEAD_LETTER:  # the pipeline kept the newest step and reason
            found.append(f"step {ctx.step}: {type(ctx.failure).__name__}: {ctx.failure}")
            return
        resolution, ref = _resolution(s, ctx, outcome)
        ticket.extend([ref] if ref and not ticket else [])
        if resolve_dead_letter(s, dead_id, clock.now(), resolution):
            found.append(resolution)

    pipeline = pipeline or Pipeline(settings, engine, Renderer(), clock)
    outcome = pipeline.process_batch([fetched], finish=finish)[0]
    bound = logger.bind(
        office=dead.office_code,
        mailbox=dead.folder,
        uid=dead.uid,
        ticket=ticket[0] if ticket else None,
        dead_letter=dead_id,
        by=operator_name(),
    )
    if outcome is Outcome.DEAD_LETTER:
        bound.warning("dead_letter_retry_failed", reason=found[0] if found else "")
        return Retried(dead_id, "failed", found[0] if found else "failed again")
    if not found:  # resolved by someone else meanwhile
        return Retried(dead_id, "skipped", "resolved meanwhile by another retry")
    bound.info("dead_letter_resolved", outcome=str(outcome), resolution=found[0])
    return Retried(dead_id, "resolved", found[0])


def _resolution(s: Session, ctx: MailContext, outcome: Outcome) -> tuple[str, str | None]:
    """What became of a retried mail, for the dead letter's `resolution`, and its ticket."""
    if outcome is Outcome.DUPLICATE:
        ref = stored_mail_ticket(s, ctx.read.office.code, ctx.read.dedupe_key)
        return f"already stored{f' on {ref}' if ref else ''} (duplicate), nothing added", ref
    if ctx.tx.ticket is not None:
        what = "new ticket" if outcome is Outcome.TICKET_CREATED else "follow-up on"
        ack = ", acknowledgement queued" if ctx.tx.outgoing is not None else ""
        return f"{what} {ctx.tx.ticket.ref}{ack}", ctx.tx.ticket.ref
    kind = ctx.read.decision.kind if ctx.read.decision else "mail"
    return f"stored as {kind}, on no ticket", None


def retry_dead_letters(
    settings: Settings, engine: Engine, clock: Clock, office: str | None = None
) -> list[Retried]:
    """Retry every dead letter not yet resolved (of one office), oldest first."""
    with db.reading(engine) as s:
        ids = [d.id for d in dead_letters(s, office=office, limit=100_000)]
    pipeline = Pipeline(settings, engine, Renderer(), clock)
    return [retry_dead_letter(settings, engine, clock, i, pipeline) for i in ids]


def dismiss_dead_letter(engine: Engine, clock: Clock, dead_letter_id: int, reason: str) -> tuple[bool, str]:
    """Mark a dead letter resolved without processing it: (done, what to tell the operator)."""
    who = operator_name()
    with db.transaction(engine) as s:
        dead = dead_letter(s, dead_letter_id)
        resolution = f"dismissed by {who}: {reason}"
        done = dead is not None and resolve_dead_letter(s, dead_letter_id, clock.now(), resolution)
    if dead is None:
        return False, f"no dead letter {dead_letter_id}"
    if not done:
        return False, f"dead letter {dead_letter_id} was already resolved: {dead.resolution}"
    logger.warning(
        "dead_letter_dismissed",
        office=dead.office_code,
        mailbox=dead.folder,
        uid=dead.uid,
        dead_letter=dead_letter_id,
        reason=reason,
        by=who,
    )
    return (
        True,
        f"dead letter {dead_letter_id}: {resolution} (kept: mailer dead-letters show {dead_letter_id} --raw)",
    )


RETRY_ALL_AT_MOST = 10_000  # deliveries put back by one `outbox retry --all`


def retry_delivery(engine: Engine, clock: Clock, outbox_id: int) -> tuple[bool, str]:
    """Put a failed delivery back in the queue: (done, what to tell the operator)."""
    with db.transaction(engine) as s:
        found = delivery(s, outbox_id)
        done = found is not None and release_failed_delivery(s, outbox_id, clock.now())
    if found is None:
        return False, f"no delivery {outbox_id}"
    if not done:
        if found.state == OutboxState.SENT:
            when = f" {found.sent_at:%Y-%m-%d %H:%M} UTC" if found.sent_at else ""
            return False, f"delivery {outbox_id} was sent{when}: sending it again would be a duplicate"
        return False, f"delivery {outbox_id} is {found.state}, not failed: the outbox still handles it"
    logger.warning(
        "delivery_released",
        office=found.office_code,
        ticket=found.ticket_ref,
        outbox_id=outbox_id,
        to=found.envelope_to,
        last_error=found.last_error,
        by=operator_name(),
    )
    return True, (
        f"delivery {outbox_id} to {found.envelope_to} is pending again "
        f"(was: {found.last_error or 'failed'}); `mailer run` sends it (or the next `mailer once`)"
    )


def retry_failed_since(
    engine: Engine, clock: Clock, since: datetime, office: str | None, kind: str | None
) -> tuple[int, list[str]]:
    """Put back every delivery that failed since `since` (of one office, of one kind: ack,
    notice, …): (how many, one line each for the operator). A mail sent meanwhile is left."""
    with db.reading(engine) as s:
        failed = deliveries(s, office, ShownOutboxState.FAILED, RETRY_ALL_AT_MOST)
    chosen = [d for d in failed if d.failed_at and d.failed_at >= since and kind in (None, d.kind)]
    said = [retry_delivery(engine, clock, d.id) for d in sorted(chosen, key=lambda d: d.id)]
    return sum(ok for ok, _ in said), [line for _, line in said]
