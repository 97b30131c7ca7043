"""The pipeline's steps for what the office's Sent folder holds (see driver.py for the order).

    … dedupe → thread → … → store → early_answer → relate → … → adopt_answers → …

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

from sqlmodel import Session

from mailer import log
from mailer.decide import lifecycle
from mailer.model import Role
from mailer.pipeline.context import Attempt, Reading, Setup
from storage.conversations import add_staff
from storage.early_answers import add_early_answer, attach_early_answer, early_answers_citing
from storage.sent_mail import queued_mail
from storage.tickets import add_ticket_event, change_ticket, note_ticket_message
from storage.vocabulary import MessageKind, TicketState

logger = log.get(__name__)
_MAX_CITED = 20  # Message-IDs noted per early answer: In-Reply-To, then the newest References


def own_copy(read: Reading, tx: Attempt, s: Session) -> str:
    """Why a mail of the Sent folder is our own mail, already stored: "" when it is not (an
    officer's mail). Sets tx.ticket to its ticket, for the log line only."""
    if read.fetched.role is not Role.SENT or read.decision is None:
        return ""
    mid = read.mail.message_id
    ours = queued_mail(s, read.office.code, mid) if mid else None
    if ours is not None:
        tx.ticket = ours.ticket
        return f"our own {ours.kind} (its Message-ID is in our outbox)"
    return read.decision.reason if read.decision.kind is MessageKind.OWN else ""


def step_early_answer(p: Setup, read: Reading, tx: Attempt, s: Session) -> None:
    """An officer's answer stored on no ticket: noted under the Message-IDs it cites."""
    officer, mail = tx.officer, read.mail
    if officer is None or tx.ticket is not None or tx.message_pk is None or tx.command is not None:
        return
    ids = dict.fromkeys([*mail.in_reply_to, *reversed(mail.references)])
    cited = [m for m in ids if m != mail.message_id]
    if cited:
        add_early_answer(
            s, read.office.code, tx.message_pk, cited[:_MAX_CITED], read.received_at, officer.email, read.now
        )


def step_adopt_answers(p: Setup, read: Reading, tx: Attempt, s: Session) -> None:
    """A new ticket's request already answered: the answers stored before it join and answer it."""
    ticket, mid = tx.ticket, read.mail.message_id if read.parsed else None
    if not (tx.new_ticket and ticket is not None and mid):
        return
    for early in early_answers_citing(s, read.office.code, mid):
        at = max(early.answered_at, read.received_at)  # an answer never precedes its request
        attach_early_answer(s, early.message_pk, ticket.id)
        note_ticket_message(s, ticket.id, read.now)
        if early.officer not in p.own_addresses:
            add_staff(s, ticket.id, early.officer, read.now)
        change = lifecycle.staff_answered(TicketState.OPEN)
        change_ticket(
            s,
            ticket.id,
            state=change.state,
            at=at,
            resolution=change.resolution,
            officer=early.officer,
            first_response=change.first_response,
        )
        detail = "an answer stored before the request it answers"
        add_ticket_event(
            s, ticket_id=ticket.id, message_pk=early.message_pk, at=at, event=change.event,
            state=change.state, actor=early.officer, detail=detail,
        )  # fmt: skip
        tx.early_answers += 1


def report(tx: Attempt) -> None:
    """Log what these steps did (inside the driver's bound context)."""
    if tx.early_answers:
        logger.info("early_answers_joined", count=tx.early_answers, state=TicketState.ANSWERED)
