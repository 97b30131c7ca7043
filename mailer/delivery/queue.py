"""Putting a rendered mail in the outbox: stored on its ticket as our message and queued for
delivery, inside the caller's transaction (nothing is sent before that commits; outbox.py
sends it)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel import Session

from mailer.settings import Office
from storage import messages, outbox
from storage.vocabulary import Direction, MessageKind

if TYPE_CHECKING:  # not at run time: the sender process does without jinja2 and babel
    from mailer.delivery.render import Outgoing


def enqueue(
    s: Session,
    office: Office,
    ticket_id: int | None,
    kind: MessageKind,
    reason: str,
    out: Outgoing,
    now: datetime,
    not_before: datetime | None = None,
    quiet_after: datetime | None = None,
    cause: tuple[str, str] = ("", ""),
) -> int:
    """Store a rendered mail on its ticket and queue it for delivery, inside the caller's
    transaction (nothing is sent before that commits), due at `not_before` (default `now`);
    from `quiet_after` on it waits out the quiet hours (quiet.py); `cause`: (author, envelope
    sender) of the incoming mail that caused it, counted by the hourly limits (guard.py).
    Returns the outbox id."""
    message_pk = messages.add_message(
        s,
        office_code=office.code,
        ticket_id=ticket_id,
        direction=Direction.OUT,
        kind=kind,
        reason=reason,
        message_id=out.message_id,
        dedupe_key=f"out:{out.message_id}",
        from_email=office.email,
        from_name=office.name,
        to_emails=out.envelope_to,
        subject=out.subject,
        sent_at=now,
        stored_at=now,
        body_text=out.text,
        raw_sha256=hashlib.sha256(out.raw).hexdigest(),
        raw=out.raw,
    )
    return outbox.add_outbox(
        s,
        office_code=office.code,
        message_pk=message_pk,
        ticket_id=ticket_id,
        envelope_from=out.envelope_from,
        envelope_to=out.envelope_to,
        next_attempt_at=not_before or now,
        created_at=now,
        quiet_after=quiet_after,
        author=cause[0],
        envelope_sender=cause[1],
    )
