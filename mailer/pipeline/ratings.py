"""The pipeline's rating steps (see driver.py for the order).

    … dedupe → thread → flags → rating → store → … → lifecycle → … → ask_rating → …

- rating: a reply to our closing mail, or a mail whose subject carries the rating marker of
  one of the office's tickets, that gives a score (1–4) is recorded as the ticket's rating
  (SKM); it never reopens the ticket (the lifecycle step leaves it be) and is never acknowledged.
- ask_rating: an officer closed an answered ticket (#selesai, #tutup): the requester gets the
  closing mail with the rating request, as after the 7-day close (delivery/closing_mail.py:
  once per ticket, never for spam or a duplicate, the guard asked, the quiet hours kept).
"""

from __future__ import annotations

from sqlmodel import Session

from mailer import log
from mailer.decide import rating
from mailer.delivery.closing_mail import queue_closing
from mailer.pipeline.context import Attempt, Reading, Setup
from storage.conversations import ticket_participants
from storage.ratings import save_rating
from storage.sent_mail import our_mail_among
from storage.sweeps import closing_facts
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


def step_ask_rating(p: Setup, read: Reading, tx: Attempt, s: Session) -> None:
    """An officer closed an answered ticket: queue the closing mail that asks for a rating."""
    if tx.ticket is None or tx.change is None or not tx.change.ask_rating:
        return
    facts = closing_facts(s, tx.ticket.id)
    withheld = queue_closing(s, p.settings, p.renderer, read.office, facts, read.now, by_officer=True)
    tx.rating_asked, tx.rating_withheld = not withheld, withheld


def report(tx: Attempt) -> None:
    """Log what the steps did (inside the driver's bound context)."""
    if tx.rating is not None:
        logger.info("rating_recorded", score=tx.rating, how=tx.rating_how)
    if tx.rating_asked:
        logger.info("rating_requested", reason="closed by an officer after an answer")
    elif tx.rating_withheld:
        logger.info("rating_request_withheld", reason=tx.rating_withheld)
