"""No mail to a person at night: the quiet hours of the office's time zone.

An acknowledgement answers a mail its writer sent seconds earlier, so it goes out at once, day
or night. When it is late (the daemon was down, a backlog is read at 03:00, the SMTP server
was away), it would wake someone for mail they sent hours ago: from `quiet_after` (the mail's
arrival + `acknowledgement.immediate_within_minutes`) on, a mail waits out the quiet hours
(`acknowledgement.quiet_hours`, office local time) and goes when they end. The pipeline asks
when it queues an acknowledgement, the sender again when it takes the mail (outbox.py). Every
other mail (closing mails, notices, digests, complaints to the head, monthly reports) is queued
in working hours with `quiet_after` = its queueing time: should its sending slip into the night,
it waits for the morning too.

Pure functions of the times given (time is a parameter).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, tzinfo

from mailer.settings import AcknowledgementSettings


def quiet_end(at: datetime, tz: tzinfo, quiet_hours: tuple[str, str]) -> datetime | None:
    """When the quiet hours `at` falls in end (aware, in `tz`), or None when `at` is outside
    them. `quiet_hours` is (from, until) local time, "21:00"-"06:00" across midnight; equal
    times: no quiet hours."""
    start, end = time.fromisoformat(quiet_hours[0]), time.fromisoformat(quiet_hours[1])
    if start == end:
        return None
    local = at.astimezone(tz)
    now, day = local.time().replace(tzinfo=None), local.date()
    if start < end:  # within one day, e.g. 00:00-06:00
        inside, end_day = start <= now < end, day
    else:  # across midnight: the evening part ends tomorrow, the morning part today
        inside, end_day = now >= start or now < end, day + timedelta(days=1) if now >= start else day
    return datetime.combine(end_day, end, tz) if inside else None


def hold_until(
    quiet_after: datetime | None, now: datetime, tz: tzinfo, quiet_hours: tuple[str, str]
) -> datetime | None:
    """Until when a mail waits instead of going `now`: the end of the quiet hours when `now` is
    in them and the mail is no longer immediate (`quiet_after` has passed); None: send now."""
    if quiet_after is None or now < quiet_after:
        return None
    return quiet_end(now, tz, quiet_hours)


def immediate_window(
    internal_date: datetime | None,
    date_header: datetime | None,
    now: datetime,
    tz: tzinfo,
    ack: AcknowledgementSettings,
) -> tuple[datetime, datetime | None]:
    """(quiet_after, held until) of an automatic reply to a mail: it goes at once within
    `ack.immediate_within_minutes` of the mail's arrival, and after that waits out the quiet hours."""
    arrived = received_time(internal_date, date_header, now)
    quiet_after = arrived + timedelta(minutes=ack.immediate_within_minutes)
    return quiet_after, hold_until(quiet_after, now, tz, ack.quiet_hours)


def received_time(internal_date: datetime | None, date_header: datetime | None, now: datetime) -> datetime:
    """When a mail arrived: the server's INTERNALDATE, else its Date header, never later than
    `now` (a sender's clock ahead, or a forged date, must not make old mail look new)."""
    for found in (internal_date, date_header):
        if found is not None:
            return min(found, now)
    return now
