"""Closing quiet tickets: an answered ticket the requester has not followed up for
`closing.after_days` (7 days in the service standards) is closed, and the requester gets a
short closing mail asking for a rating (rating.py builds its links).

Runs periodically (aftercare.py) and acts only while the office is open, so no closing mail
goes out at night. Each ticket is closed in its own transaction together with its event and
its closing mail in the outbox, on the condition that it is still answered and quiet: a
restart, a second pass or a reply arriving meanwhile never closes twice or mails twice.
A ticket an officer settled as spam or as a duplicate (#spam, #duplikat) closes silently: a
rating request to a spammer, or a second one for one question, is mail nobody wants.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from enum import StrEnum

from babel.numbers import format_decimal
from sqlalchemy import Engine
from sqlmodel import Session

from mailer import log
from mailer.clock import Clock
from mailer.decide import rating, sla
from mailer.decide.threader import NO_HINTS, outlook_hints, outlook_reply_headers
from mailer.delivery import guard
from mailer.delivery.outbox import enqueue
from mailer.delivery.render import (
    LANGUAGES,
    MAX_NAME_CHARS,
    MAX_SUBJECT_CHARS,
    Outgoing,
    Renderer,
    one_line,
    reply_subject,
)
from mailer.settings import Office, Settings
from storage import db, messages, sweeps, tickets
from storage.sweeps import close_quiet_ticket
from storage.vocabulary import NOT_TO_ANSWER, MessageKind, TicketState

logger = log.get(__name__)
ACTOR = "pst-mailer"  # who closed it, in the ticket's history
BATCH = 100  # tickets listed per query


class Closed(StrEnum):
    """What closing one quiet ticket came to (the keys of close_quiet's counts)."""

    CLOSED = TicketState.CLOSED  # closed, its closing mail queued
    WITHOUT_MAIL = "closed_without_mail"  # closed; no mail (settled as spam/duplicate, or the guard)
    SKIPPED = "skipped"  # no longer answered and quiet: left as it is


def own_addresses(settings: Settings) -> frozenset[str]:
    """The desk's own addresses: office mailboxes and complaint addresses (no automatic mail)."""
    return frozenset(o.email for o in settings.offices) | {
        a for o in settings.offices for a in o.complaint_addresses
    }


def _days_text(days: float, lang: str) -> str:
    """ "7", or "1,5" in Indonesian and "1.5" in English (babel)."""
    return format_decimal(days, format="#,##0.##", locale=lang)


def render_closing(
    renderer: Renderer,
    settings: Settings,
    office: Office,
    ticket: sweeps.QuietTicket,
    thread: list[str],
    now: datetime,
    outlook: Sequence[tuple[str, str]] = (),
) -> Outgoing:
    """The closing mail: threaded under the ticket's conversation (`outlook`: Thread-Topic and
    Thread-Index when the requester writes from Outlook), in the ticket's language, with one
    `mailto:` rating link per score."""
    lang = ticket.language if ticket.language in LANGUAGES else "id"
    links = [
        {"score": k, "label": rating.LABELS[lang][k], "url": rating.mailto(office.email, ticket.ref, k, lang)}
        for k in (4, 3, 2, 1)
    ]
    context = {
        "requester_name": one_line(ticket.requester_name, MAX_NAME_CHARS),
        "subject": one_line(ticket.subject, MAX_SUBJECT_CHARS) or "-",
        "reply_subject": reply_subject(ticket.subject, lang),
        "after_days": _days_text(office.closing_after_days, lang),
        "reopen_days": _days_text(settings.threading.reopen_days, lang),
        "ratings": links,
    }
    return renderer.compose(
        office, "closing", lang, context, ticket.requester_email, ticket.ref, now, thread, extra=outlook
    )


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
    detail = f"no reply from the requester for {_days_text(office.closing_after_days, 'en')} days"
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
    if ticket.resolution in NOT_TO_ANSWER:  # settled as spam or duplicate: no more mail to them
        return Closed.WITHOUT_MAIL, f"settled as {ticket.resolution}: no closing mail, no rating request"
    refused = guard.refusal(s, office.code, ticket.requester_email, own_addresses(settings))
    if refused:
        return Closed.WITHOUT_MAIL, refused
    # Outlook files it in the conversation of the requester's latest mail from Outlook, if any
    latest = messages.latest_outlook_mail(s, ticket.id)
    hints = outlook_hints(latest) if latest is not None else NO_HINTS
    outlook = outlook_reply_headers(hints, ticket.subject, now, secrets.randbelow(256))
    out = render_closing(
        renderer, settings, office, ticket, messages.ticket_message_ids(s, ticket.id), now, outlook
    )
    # queued in office hours; should the sending slip into the night, it waits for the morning
    why = "closing notice with a rating request"
    enqueue(s, office, ticket.id, MessageKind.CLOSING, why, out, now, quiet_after=now)
    return Closed.CLOSED, ""


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
