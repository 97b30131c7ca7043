"""The pipeline's rating step (see driver.py for the order).

    … dedupe → thread → flags → rating → store → …

A reply to our closing mail, or a mail whose subject carries the rating marker of one of the
office's tickets, that gives a score (1–4) is recorded as the ticket's rating (SKM); it never
reopens the ticket (the lifecycle step leaves it be) and is never acknowledged.
"""

from __future__ import annotations

from sqlmodel import Session

from mailer import log
from mailer.decide import rating
from mailer.pipeline.context import Attempt, Reading, Setup
from storage.conversations import ticket_participants
from storage.ratings import save_rating
from storage.sent_mail import our_mail_among
from storage.vocabulary import MessageKind

logger = log.get(__name__)


def step_rating(p: Setup, read: Reading, tx: Attempt, s: Session) -> None:
    """A rating of a ticket: the marker in the subject, or a score in a reply to our closing mail."""
    mail, office = read.mail, read.office
    if read.decision is None or read.decision.kind is not MessageKind.REQUEST or tx.officer is not None:
        return
    if read.unverified_command is not None:
        return  # an unverified #command (refusal.py): no rating either
    marked = rating.subject_rating(mail.subject, office.code)
    score = marked.score if marked is not None else rating.reply_score(read.written)
    if score is None:
        return  # no marker, no score: any mail (a reply to the closing mail with no score too)
    closing_of = None
    if marked is None:  # a plain score: only as a reply to our closing mail (one query, rarely)
        cited = [*mail.in_reply_to, *mail.references]
        closing = our_mail_among(s, office.code, (MessageKind.CLOSING,), cited)
        if closing is None or closing.ticket_id is None:
            return
        closing_of = closing.ticket_id
    ticket = tx.ticket
    if ticket is None and tx.link_to is not None and tx.link_to[1] == "reopen_window_passed":
        ticket = tx.link_to[0]  # the requester, on a ticket closed long ago: still theirs to rate
    if ticket is None or (marked is not None and marked.ref != ticket.ref):
        return  # not someone on the ticket the marker names: handled as any mail
    if marked is None and closing_of != ticket.id:
        return
    if tx.ticket is None:
        tx.participants = ticket_participants(s, ticket.id)
    tx.ticket, tx.link_to, tx.reopen = ticket, None, False
    tx.rating, tx.rating_how = score, "mailto" if marked is not None else "reply"
    sender = mail.from_.email if mail.from_ else ""
    save_rating(s, ticket.id, office.code, score, tx.rating_how, sender, mail.message_id, read.now)


def report(tx: Attempt) -> None:
    """Log what the step did (inside the driver's bound context)."""
    if tx.rating is not None:
        logger.info("rating_recorded", score=tx.rating, how=tx.rating_how)
