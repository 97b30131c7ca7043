"""Who is told about a late ticket, and when. Pure: `now` and the settings are parameters; the
sweep (sweep.py) runs the queries and queues the mail.

The ladder of an open ticket (NoticeLevel), in working time of its office (sla.shift_working_days):

    level 0  reminder      the office's staff (its mailbox)   share of the time used (0.75)
    level 1  office_head   offices.X.head                     at the deadline
    level 2  province_head provinces.P.head                   deadline + level2_after_working_days
    level 3  national      national.head                      deadline + level3_after_working_days

Every level is a cutoff per office: the tickets whose deadline is at or before it have reached
the level (the reminder: still ahead of them, too). So one query per level finds them all, and
the time math is done once per office, not per ticket.

Nothing goes to a person outside their own working hours: the sweep decides at sweep time and
leaves a level alone while its recipient is off (night, weekend, holiday). The ticket stays a
candidate and the next sweep within their hours sends it, then looking at the ticket as it is
(one answered overnight gets nothing). Only `open` tickets are candidates: `waiting` (paused for
the requester) and `answered` are not escalated.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from mailer.decide import sla
from mailer.settings import Office, OfficeHours, Settings
from storage.vocabulary import NoticeLevel

NATIONAL_CODE = "0000"  # the national level's calendar, in sla's terms


@dataclass(frozen=True)
class Person:
    """Someone notices and digests go to, with their working calendar: an Office value holding
    their time zone and hours, so that sla's functions (holidays, office closures) apply as is."""

    address: str
    name: str
    calendar: Office


@dataclass(frozen=True)
class Rung:
    """One level of one office on one sweep: who is told, and which deadlines reached it (at or
    before `cutoff`; for the reminder also after `after`, i.e. not yet due)."""

    level: NoticeLevel
    office: Office
    recipient: Person
    cutoff: datetime
    after: datetime | None = None


def calendar_of(
    settings: Settings, code: str, name: str, zone: str, label: str, hours: OfficeHours
) -> Office:
    """A manager's calendar as an Office value (their zone and hours; the rest is not read)."""
    base = settings.offices[0]
    return dataclasses.replace(
        base,
        code=code,
        name=name,
        time_zone=zone,
        time_zone_label=label,
        hours=hours,
        calendar=settings.calendar,  # the national changes only, not the office's own closures
    )


def recipient(settings: Settings, office: Office, level: NoticeLevel) -> Person | None:
    """Who gets `level` about a ticket of `office`, or None when the settings name nobody."""
    if level == NoticeLevel.REMINDER:
        return Person(office.email, f"Petugas {office.desk_name}", office)
    if level == NoticeLevel.OFFICE_HEAD:
        return Person(office.head, office.head_title, office) if office.head else None
    if level == NoticeLevel.PROVINCE_HEAD:
        p = settings.provinces.get(office.province_code)
        if p is None or not p.head or p.hours is None:
            return None
        return Person(p.head, p.head_title, calendar_of(settings, p.code, p.name, p.time_zone,
                                                                    p.time_zone_label, p.hours))  # fmt: skip
    n = settings.national
    if n is None:
        return None
    return Person(
        n.head,
        n.head_title,
        calendar_of(settings, NATIONAL_CODE, n.name, n.time_zone, n.time_zone_label, n.hours),
    )


def reminder_share(settings: Settings, office: Office) -> float:
    return (
        office.remind_at_share if office.remind_at_share is not None else settings.escalation.remind_at_share
    )


def rung(settings: Settings, office: Office, level: NoticeLevel, now: datetime) -> Rung | None:
    """The level's recipient and cutoff for `office` at `now`; None when nobody gets it."""
    person = recipient(settings, office, level)
    if person is None:
        return None
    e = settings.escalation
    if level == NoticeLevel.REMINDER:
        ahead = (1 - reminder_share(settings, office)) * office.sla_working_days
        return Rung(level, office, person, sla.shift_working_days(office, now, ahead), after=now)
    if level == NoticeLevel.OFFICE_HEAD:
        return Rung(level, office, person, now)
    days = e.level2_after_working_days if level == NoticeLevel.PROVINCE_HEAD else e.level3_after_working_days
    return Rung(level, office, person, sla.shift_working_days(office, now, -days))


def at_work(person: Person, now: datetime) -> bool:
    """Whether `now` is within the person's working hours on one of their working days."""
    return sla.is_working_time(person.calendar, now)


@dataclass
class Plan:
    """What one sweep looks for: per level, the rungs whose recipient is at work; and the rungs
    held because their recipient is not (they are looked at again by a later sweep)."""

    due: dict[NoticeLevel, list[Rung]] = dataclasses.field(default_factory=dict)
    held: list[Rung] = dataclasses.field(default_factory=list)


def plan(settings: Settings, now: datetime, offices: Iterable[Office] | None = None) -> Plan:
    """The rungs of every office at `now`, split into those that may be sent and those held."""
    result = Plan()
    if not settings.escalation.enabled:
        return result
    for office in settings.offices if offices is None else offices:
        for level in NoticeLevel:
            found = rung(settings, office, level, now)
            if found is None:
                continue
            if at_work(found.recipient, now):
                result.due.setdefault(level, []).append(found)
            else:
                result.held.append(found)
    return result


def groups(rungs: Sequence[Rung]) -> list[tuple[list[str], datetime]]:
    """The rungs as query groups: [(office codes, cutoff)], offices with the same cutoff together."""
    by_cutoff: dict[datetime, list[str]] = defaultdict(list)
    for r in rungs:
        by_cutoff[r.cutoff].append(r.office.code)
    return [(codes, cutoff) for cutoff, codes in by_cutoff.items()]
