"""The closing mail: a ticket is closed, and its requester is asked for a rating (rating.py
builds the links). Two ways lead here: the 7-day close of a quiet answered ticket
(timed/closing.py), and an officer closing an answered ticket with #selesai / #tutup (the
pipeline's ask_rating step).

Either way the request goes at most once per ticket, never to a ticket settled as spam or as a
duplicate (NOT_TO_ANSWER), never to an address the guard refuses; it is queued in the caller's
transaction with `quiet_after` = now, so a sending that falls in the quiet hours waits for the
morning.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime

from babel.numbers import format_decimal
from sqlmodel import Session

from mailer.decide import rating
from mailer.decide.threader import NO_HINTS, outlook_hints, outlook_reply_headers
from mailer.delivery import guard
from mailer.delivery.queue import enqueue
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
from storage import messages
from storage.sweeps import QuietTicket
from storage.vocabulary import NOT_TO_ANSWER, MessageKind

# Mails that stayed inside the office (an officer's #selesai, notes, notices to staff and heads):
# the requester never saw them, so the closing mail neither answers nor cites them.
INSIDE_THE_OFFICE = (
    MessageKind.STAFF_COMMAND,
    MessageKind.STAFF_NOTE,
    MessageKind.NOTICE,
    MessageKind.DIGEST,
    MessageKind.REPORT,
    MessageKind.COMPLAINT_NOTICE,
)


def days_text(days: float, lang: str = "en") -> str:
    """ "7", or "1,5" in Indonesian and "1.5" in English (babel)."""
    return format_decimal(days, format="#,##0.##", locale=lang)


def render_closing(
    renderer: Renderer,
    settings: Settings,
    office: Office,
    ticket: QuietTicket,
    thread: list[str],
    now: datetime,
    outlook: Sequence[tuple[str, str]] = (),
    by_officer: bool = False,
) -> Outgoing:
    """The closing mail: threaded under the ticket's conversation (`outlook`: Thread-Topic and
    Thread-Index when the requester writes from Outlook), in the ticket's language, with one
    `mailto:` rating link per score. `by_officer`: it says the consultation is complete, not
    that the requester stayed quiet."""
    lang = ticket.language if ticket.language in LANGUAGES else "id"
    links = [
        {"score": k, "label": rating.LABELS[lang][k], "url": rating.mailto(office.email, ticket.ref, k, lang)}
        for k in (4, 3, 2, 1)
    ]
    context = {
        "requester_name": one_line(ticket.requester_name, MAX_NAME_CHARS),
        "subject": one_line(ticket.subject, MAX_SUBJECT_CHARS) or "-",
        "reply_subject": reply_subject(ticket.subject, lang),
        "after_days": days_text(office.closing_after_days, lang),
        "reopen_days": days_text(settings.threading.reopen_days, lang),
        "ratings": links,
        "by_officer": by_officer,
    }
    return renderer.compose(
        office, "closing", lang, context, ticket.requester_email, ticket.ref, now, thread, extra=outlook
    )


def queue_closing(
    s: Session,
    settings: Settings,
    renderer: Renderer,
    office: Office,
    ticket: QuietTicket,
    now: datetime,
    by_officer: bool = False,
) -> str:
    """Queue the closing mail of a ticket just closed (the caller's transaction). Returns ""
    when it is queued, else why not: settled as spam or duplicate, a rating already asked on
    this ticket, or the guard's refusal of the requester's address."""
    if ticket.resolution in NOT_TO_ANSWER:  # no more mail to them
        return f"settled as {ticket.resolution}: no closing mail, no rating request"
    if messages.ticket_has_mail_of_kind(s, ticket.id, MessageKind.CLOSING):
        return "a rating was already asked on this ticket: it is asked once"
    refused = guard.refusal(s, office.code, ticket.requester_email, settings.own_addresses)
    if refused:
        return refused
    # Outlook files it in the conversation of the requester's latest mail from Outlook, if any
    latest = messages.latest_outlook_mail(s, ticket.id)
    hints = outlook_hints(latest) if latest is not None else NO_HINTS
    outlook = outlook_reply_headers(hints, ticket.subject, now, secrets.randbelow(256))
    thread = messages.ticket_message_ids(s, ticket.id, leave_out=INSIDE_THE_OFFICE)
    out = render_closing(renderer, settings, office, ticket, thread, now, outlook, by_officer)
    why = "closing notice with a rating request" + (" (closed by an officer)" if by_officer else "")
    enqueue(s, office, ticket.id, MessageKind.CLOSING, why, out, now, quiet_after=now)
    return ""
