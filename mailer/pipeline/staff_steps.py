"""The pipeline's steps for what the office's Sent folder holds (see pipeline.py for the driver).

    … dedupe → thread → … → store → early_answer → relate → … → adopt_answers → cursor

- own_copy (asked by the dedupe step): the Sent folder's copy of a mail we sent ourselves
  (acknowledgement, closing mail, notice…), saved there by the office's mail server: known by
  our X-PST-Mailer header or by a Message-ID of our outbox. It is stored already (as the
  outgoing mail): skipped like a duplicate, the cursor moves on, and it is never taken for an
  officer's answer.
- early_answer: an officer's answer that joins no ticket (the Sent folder was read before the
  request it answers reached a ticket) is noted under the Message-IDs it cites.
- adopt_answers: a new ticket takes the answers waiting for its request (one indexed lookup):
  each joins the ticket and answers it (`answered`, first response at the answer's time).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlmodel import Session

from mailer import log
from mailer.decide import lifecycle
from mailer.model import MailKind, Role
from storage import conversations, early_answers, sent_mail, tickets
from storage.vocabulary import Resolution, TicketState

if TYPE_CHECKING:
    from mailer.pipeline.driver import MailContext, Pipeline

logger = log.get(__name__)
_MAX_CITED = 20  # Message-IDs noted per early answer: In-Reply-To, then the newest References


def own_copy(ctx: MailContext, s: Session) -> str:
    """Why a mail of the Sent folder is our own mail, already stored: "" when it is not (an
    officer's mail). Sets ctx.ticket to its ticket, for the log line only."""
    if ctx.fetched.role is not Role.SENT or ctx.decision is None:
        return ""
    mid = ctx.mail.message_id
    ours = sent_mail.queued_mail(s, ctx.office.code, mid) if mid else None
    if ours is not None:
        ctx.ticket = ours.ticket
        return f"our own {ours.kind} (its Message-ID is in our outbox)"
    return ctx.decision.reason if ctx.decision.kind is MailKind.OWN else ""


def step_early_answer(p: Pipeline, ctx: MailContext, s: Session) -> None:
    """An officer's answer stored on no ticket: noted under the Message-IDs it cites."""
    officer, mail = ctx.officer, ctx.mail
    if officer is None or ctx.ticket is not None or ctx.message_pk is None or ctx.command is not None:
        return
    ids = dict.fromkeys([*mail.in_reply_to, *reversed(mail.references)])
    cited = [m for m in ids if m != mail.message_id]
    if cited:
        early_answers.add_early_answer(
            s, ctx.office.code, ctx.message_pk, cited[:_MAX_CITED], ctx.received_at, officer.email, ctx.now
        )


def step_adopt_answers(p: Pipeline, ctx: MailContext, s: Session) -> None:
    """A new ticket's request already answered: the answers stored before it join and answer it."""
    ticket, mid = ctx.ticket, ctx.mail.message_id if ctx.parsed else None
    if not (ctx.new_ticket and ticket is not None and mid):
        return
    for early in early_answers.early_answers_citing(s, ctx.office.code, mid):
        at = max(early.answered_at, ctx.received_at)  # an answer never precedes its request
        early_answers.attach_early_answer(s, early.message_pk, ticket.id)
        tickets.note_ticket_message(s, ticket.id, ctx.now)
        if early.officer not in p.own_addresses:
            conversations.add_staff(s, ticket.id, early.officer, ctx.now)
        change = lifecycle.staff_answered(lifecycle.OPEN)
        tickets.change_ticket(
            s,
            ticket.id,
            state=TicketState(change.state),
            at=at,
            resolution=None if change.resolution is None else Resolution(change.resolution),
            officer=early.officer,
            first_response=change.first_response,
        )
        detail = "an answer stored before the request it answers"
        tickets.add_ticket_event(
            s, ticket_id=ticket.id, message_pk=early.message_pk, at=at, event=change.event,
            state=TicketState(change.state), actor=early.officer, detail=detail,
        )  # fmt: skip
        ctx.early_answers += 1


def report(ctx: MailContext) -> None:
    """Log what these steps did (inside the pipeline's bound context)."""
    if ctx.early_answers:
        logger.info("early_answers_joined", count=ctx.early_answers, state=lifecycle.ANSWERED)
