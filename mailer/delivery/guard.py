"""May an automatic mail go to this address? The check every automatic mail of an office
passes before it is queued: acknowledgements now, reminders and closing notices later. A flag
set after a mail was queued stops it too: the sender's claim checks again (outbox.advance_outbox).
The hourly limits against floods and reflection (`flood_refusal`: per recipient, per author,
per envelope sender, per office) are decided in mailer/decide/floods.py.

Decide purely from what is stored; the caller acts (queues, or logs the reason and queues
nothing). Each function returns the reason for refusing, "" when the mail may go.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from sqlmodel import Session

from mailer.decide import floods, rules
from storage import flags, outbox
from storage.vocabulary import NOT_TO_ANSWER, MessageKind, OutboxState

HOUR = timedelta(hours=1)


def refusal(s: Session, office_code: str, to: str, own_addresses: Collection[str]) -> str:
    """Why no automatic mail may go to `to` at all: not an address we can send to, an office
    address of this desk (no office daemon answers another), or flagged bouncing or
    complained for this office. "" when it may."""
    if not rules.answerable(to):
        return f"no outside address we can answer: {to!r}"
    if to in own_addresses:
        return f"{to} is an office address of this desk"
    flag = flags.address_flag(s, office_code, to)
    if flag is not None:
        return f"{to} is {flag.flag} since {flag.since:%Y-%m-%d %H:%M} UTC: {flag.reason}"
    return ""


def rate_refusal(
    s: Session, office_code: str, to: str, now: datetime, kinds: Sequence[MessageKind], max_per_hour: int
) -> str:
    """Why no more mail of these kinds may go to `to` this hour: the office already queued
    `max_per_hour` of them for it in the hour before `now` (a sender that keeps opening new
    requests, e.g. an auto-responder that does not say so). "" when it may."""
    sent = outbox.count_mail_to(s, office_code, to, now - HOUR, kinds)
    if sent >= max_per_hour:
        return f"limit reached: {sent} {'/'.join(kinds)} to {to} in the last hour (at most {max_per_hour})"
    return ""


def flood_refusal(
    s: Session,
    office_code: str,
    now: datetime,
    kinds: Sequence[MessageKind],
    limits: floods.Limits,
    to: str,
    cause: tuple[str, str],
) -> str:
    """Why no more mail of these kinds may go this hour: the office already queued the limit of
    them to `to`, caused by the author or the envelope sender of `cause` (From, Return-Path of
    the incoming mail), or in all (floods.over_limit). "" when it may."""
    author, envelope_sender = cause
    caps = (limits.per_sender, limits.per_office)
    to_count, by_author, by_envelope, in_office = outbox.count_recent_mail(
        s, office_code, now - HOUR, kinds, (to, author, envelope_sender), caps
    )
    counts = floods.Counts(
        to_recipient=to_count,
        by_author=by_author if author else None,
        by_envelope_sender=by_envelope if envelope_sender else None,
        in_office=in_office,
    )
    return floods.over_limit(counts, limits, to, author, envelope_sender, "/".join(kinds))


def suppression_reason(found: outbox.Hindrance) -> str:
    """Why a queued mail must not go at all (a flag on its recipient, its requester's ticket
    settled as spam or duplicate), or "" when nothing stops it."""
    if found.state != OutboxState.PENDING:
        return ""
    if found.flag:
        since = f" since {found.flag_since:%Y-%m-%d %H:%M} UTC" if found.flag_since else ""
        return f"recipient is {found.flag}{since}: {found.flag_reason}"
    if found.resolution in NOT_TO_ANSWER:
        return f"ticket {found.ticket_ref} was settled as {found.resolution} before the mail went"
    return ""
