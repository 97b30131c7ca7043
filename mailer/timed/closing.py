"""Closing quiet tickets: an answered ticket the requester has not followed up for
`closing.after_days` (7 days in the service standards) is closed, and the requester gets a
short closing mail asking for a rating (delivery/closing_mail.py; an officer's #selesai on an
answered ticket asks the same, once per ticket: the pipeline's ask_rating step).

Runs periodically (aftercare.py) and acts only while the office is open, so no closing mail
goes out at night. Each ticket is closed in its own transaction together with its event and
its closing mail in the outbox, on the condition that it is still answered and quiet: a
restart, a second pass or a reply arriving meanwhile never closes twice or mails twice.
A ticket an officer settled as spam or as a duplicate (#spam, #duplikat) closes silently: a
rating request to a spammer, or a second one for one question, is mail nobody wants; so does a
ticket whose rating was already asked (closed by an officer, reopened, answered, quiet again).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Engine
from sqlmodel import Session

from mailer import log
from mailer.clock import Clock
from mailer.decide import sla
from mailer.delivery.closing_mail import days_text, queue_closing
from mailer.delivery.render import Renderer
from mailer.settings import Office, Settings
from storage import db, sweeps, tickets
from storage.sweeps import close_quiet_ticket
from storage.vocabulary import TicketState

logger = log.get(__name__)
ACTOR = "pst-mailer"  # who closed it, in the ticket's history
BATCH = 100  # tickets listed per query


class Closed(StrEnum):
    """What closing one quiet ticket came to (the keys of close_quiet's counts)."""

    CLOSED = TicketState.CLOSED  # closed, its closing mail queued
    WITHOUT_MAIL = "closed_without_mail"  # closed; no mail (settled as spam/duplicate, or the guard)
    SKIPPED = "skipped"  # no longer answered and quiet: left as it is


def close_one(
    s: Session,
    settings: Settings,
    renderer: Renderer,
    office: Office,
    ticket: sweeps.QuietTicket,
    now: datetime,
) -> tuple[Closed, str]:
    """Close one quiet ticket and queue its closing mail (the caller's transaction).
    Returns (result, reason): CLOSED | WITHOUT_MAIL (reason: why no mail) | SKIPPED."""
    cutoff = now - timedelta(days=office.closing_after_days)
    if not close_quiet_ticket(s, ticket.id, now, cutoff):
        return Closed.SKIPPED, "no longer answered and quiet"
    detail = f"no reply from the requester for {days_text(office.closing_after_days)} days"
    tickets.add_ticket_event(
        s,
        ticket_id=ticket.id,
        message_pk=None,
        at=now,
        event="closed",
        state=TicketState.CLOSED,
        actor=ACTOR,
        detail=detail,
    )
    # queued in office hours; should the sending slip into the night, it waits for the morning
    withheld = queue_closing(s, settings, renderer, office, ticket, now)
    return (Closed.WITHOUT_MAIL, withheld) if withheld else (Closed.CLOSED, "")


def _quiet(engine: Engine, office: Office, cutoff: datetime) -> Iterator[sweeps.QuietTicket]:
    """The office's quiet answered tickets, BATCH at a time (each one closed leaves the set)."""
    seen: set[int] = set()
    while True:
        with db.reading(engine) as s:
            listed = sweeps.quiet_answered_tickets(s, office.code, cutoff, BATCH)
        batch = [t for t in listed if t.id not in seen]
        if not batch:
            return
        seen.update(t.id for t in batch)
        yield from batch


def close_quiet(settings: Settings, engine: Engine, renderer: Renderer, clock: Clock) -> Counter[str]:
    """One pass over every office that is open now: close its quiet answered tickets."""
    now = clock.now()
    done: Counter[str] = Counter()
    for office in settings.offices:
        if sla.clock_start(office, now) != now:
            continue  # closed now (night, weekend, holiday): the next pass in office hours does it
        for ticket in _quiet(engine, office, now - timedelta(days=office.closing_after_days)):
            with db.transaction(engine) as s:
                result, reason = close_one(s, settings, renderer, office, ticket, now)
            done[result] += 1
            context = {"office": office.code, "mailbox": office.imap.username, "ticket": ticket.ref}
            if result is Closed.CLOSED:
                logger.info("ticket_closed_quiet", **context, after_days=office.closing_after_days)
            elif result is Closed.WITHOUT_MAIL:
                logger.info("ticket_closed_quiet", **context, after_days=office.closing_after_days)
                logger.warning("closing_mail_withheld", **context, reason=reason)
    return done
