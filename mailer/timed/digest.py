"""The managers' morning digests: who gets one, when, and what it says. Pure: the sweep runs
the queries (sweeps.digest_counts, digest_tickets, request_texts) and queues the mail.

Managers: each head of office (their office), each province PST head (every regency/city office
of the province), the national level (every office). One digest per manager per working day
(their calendar), at `digest.local_time` of their zone but not before their opening nor after
their closing: overdue tickets and tickets due later that day, by office, the counts on top;
and, per office, one line per sender whose complaints an hourly limit kept from reaching the
head one by one since the head's previous digest ("N pengaduan lain dari <sender>").
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from mailer.decide import floods, sla
from mailer.settings import Office, Settings
from mailer.timed import escalate
from mailer.timed.escalate import Person
from storage.sweeps import DueTicket
from storage.vocabulary import NoticeLevel

EXCERPT_CHARS = 120
_GREETING = re.compile(
    r"^(yth|kepada|dear|halo|hai|hi|hello|selamat (pagi|siang|sore|malam)|assalamu|dengan hormat)\b",
    re.IGNORECASE,
)
_QUOTE_HEADER = re.compile(
    r"^(on|pada|am|le) .{4,200}(wrote|menulis|schrieb|a écrit):$|^-{2,}\s*original", re.I
)
_CLOSING = re.compile(
    r"^(salam|hormat (saya|kami)|wassalam|regards|best regards|kind regards|thanks|thank you"
    r"|terima ?kasih)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Manager:
    """Someone who gets a digest: who, which offices, and which office's mailbox sends it."""

    person: Person
    role: str  # the label of the level they are told at: office_head | province_head | national
    offices: tuple[Office, ...]

    @property
    def sender(self) -> Office:
        """The office whose mailbox and SMTP send the digest: the first one it covers."""
        return self.offices[0]


def managers(settings: Settings) -> list[Manager]:
    """Every manager of the settings, one per address (an address named twice covers both)."""
    found: dict[str, Manager] = {}

    def add(level: NoticeLevel, offices: tuple[Office, ...]) -> None:
        person = escalate.recipient(settings, offices[0], level) if offices else None
        if person is None:
            return
        role = level.label
        old = found.get(person.address)
        if old is None:
            found[person.address] = Manager(person, role, offices)
        else:
            more = tuple(o for o in offices if o not in old.offices)
            found[person.address] = Manager(old.person, old.role, old.offices + more)

    for office in settings.offices:
        add(NoticeLevel.OFFICE_HEAD, (office,))
    for code in settings.provinces:
        offices = tuple(o for o in settings.offices if o.province_code == code)
        if offices:
            add(NoticeLevel.PROVINCE_HEAD, offices)
    add(NoticeLevel.NATIONAL, settings.offices)
    return list(found.values())


def manager_by_address(settings: Settings, address: str) -> Manager | None:
    address = address.strip().lower()
    return next((m for m in managers(settings) if m.person.address == address), None)


def digest_day(manager: Manager, local_time: str, now: datetime) -> date | None:
    """The manager's local day whose digest is due at `now`, or None: a working day of theirs,
    at or after `local_time` and their opening, before their closing."""
    cal = manager.person.calendar
    local = now.astimezone(cal.tz)
    span = sla.opening_hours(cal, local.date())
    if span is None:
        return None
    start = max(span[0], datetime.combine(local.date(), time.fromisoformat(local_time), cal.tz))
    return local.date() if start <= local < span[1] else None


def end_of_day(office: Office, now: datetime) -> datetime:
    """Midnight at the end of the office's local day of `now`: tickets due before it are due today."""
    local = now.astimezone(office.tz)
    return datetime.combine(local.date() + timedelta(days=1), time(0), office.tz)


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """One line of what the requester wrote: the greeting left out, up to the quote or the
    signature (cheap on purpose: a national digest has thousands of lines, so the reading stops
    as soon as the line is full)."""
    lines: list[str] = []  # everything above the quote: the fallback when nothing else is kept
    kept: list[str] = []
    signed, size = False, 0
    for raw in text[:4000].splitlines():
        line = raw.strip()
        if line.startswith(">") or _QUOTE_HEADER.match(line) or raw.rstrip() == "--":
            break
        lines.append(line)
        if signed:
            continue
        if _CLOSING.match(line):
            if kept:
                break  # the signature follows what they wrote
            signed = True
        elif line and not _GREETING.match(line):
            kept.append(line)
            size += len(line) + 1
            if size > limit:
                break  # the excerpt is full
    line = " ".join(" ".join(kept or lines).split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class Line:
    """One ticket in a digest or a notice."""

    ref: str
    requester: str
    subject: str
    due_at: datetime  # in the office's time zone
    zone_label: str  # the office's WIB / WITA / WIT
    days_late: int  # working days begun since the deadline's day (0: overdue since today)
    overdue: bool
    due_today: bool  # not yet overdue, and due later today (the office's day)
    officer: str
    excerpt: str


@dataclass(frozen=True)
class Withheld:
    """Complaints of one sender not forwarded to the head one by one (an hourly limit)."""

    sender: str  # the address, made safe for one line (floods.sender_label)
    count: int


@dataclass(frozen=True)
class OfficeSection:
    office: Office
    overdue: int
    due_today: int
    lines: tuple[Line, ...]
    withheld: tuple[Withheld, ...] = ()  # since the head's previous digest, most first

    @property
    def more(self) -> int:
        """Tickets counted but not listed (beyond digest.max_tickets_per_office)."""
        return self.overdue + self.due_today - len(self.lines)


@dataclass(frozen=True)
class Digest:
    manager: Manager
    day: date
    sections: tuple[OfficeSection, ...]  # every office covered, in settings order

    @property
    def total(self) -> int:
        return sum(s.overdue + s.due_today for s in self.sections)

    @property
    def withheld(self) -> int:
        """Complaints not forwarded one by one, in all its offices: a digest worth sending too."""
        return sum(w.count for s in self.sections for w in s.withheld)


def _local_day(at: datetime, office: Office) -> date:
    return at.astimezone(office.tz).date()


def line(office: Office, t: DueTicket, now: datetime, text: str, days_late: int | None = None) -> Line:
    who = f"{t.requester_name} <{t.requester_email}>" if t.requester_name else t.requester_email
    return Line(
        ref=t.ref,
        requester=who,
        subject=" ".join(t.subject.split()) or "-",
        due_at=t.due_at.astimezone(office.tz),
        zone_label=office.time_zone_label,
        days_late=sla.working_days_late(office, t.due_at, now) if days_late is None else days_late,
        overdue=t.due_at <= now,
        due_today=now < t.due_at and _local_day(t.due_at, office) == _local_day(now, office),
        officer=t.last_officer or "belum ada",
        excerpt=excerpt(text),
    )


def sections(
    offices: Sequence[Office],
    now: datetime,
    counts: dict[str, tuple[int, int]],
    tickets: list[DueTicket],
    texts: dict[int, str],
    withheld: dict[str, list[tuple[str, int]]] | None = None,
) -> dict[str, OfficeSection]:
    """Each office's part of a digest from what the queries found: its counts, its listed
    tickets (earliest deadline first) and its withheld complaint notices by sender,
    {office_code: section}. The same for every manager."""
    by_office: dict[str, list[DueTicket]] = defaultdict(list)
    for t in tickets:
        by_office[t.office_code].append(t)
    found = {}
    for office in offices:
        overdue, due_today = counts.get(office.code, (0, 0))
        listed = by_office.get(office.code, [])
        today = now.astimezone(office.tz).date()
        first = min((t.due_at.astimezone(office.tz).date() for t in listed), default=today)
        days = sla.working_days_after(office, first, today)  # one calendar walk per office

        def late(t: DueTicket, office: Office = office, days: list[date] = days) -> int:
            return (
                0
                if t.due_at >= now
                else len(days) - bisect_right(days, t.due_at.astimezone(office.tz).date())
            )

        lines = tuple(line(office, t, now, texts.get(t.id, ""), late(t)) for t in listed)
        held = tuple(Withheld(floods.sender_label(a), n) for a, n in (withheld or {}).get(office.code, ()))
        found[office.code] = OfficeSection(office, overdue, due_today, lines, held)
    return found


def withheld_since(
    offices: Sequence[Office], last: dict[str, datetime], now: datetime
) -> dict[str, datetime]:
    """From when each office's withheld complaint notices go in a digest: the office head's
    previous digest (`last`: {head: when}), else a week before `now`; {office_code: moment}."""
    week = now - timedelta(days=7)
    return {o.code: last.get(o.head, week) for o in offices}


def build(manager: Manager, day: date, found: dict[str, OfficeSection]) -> Digest:
    """A manager's digest: the sections of every office they cover, in settings order."""
    return Digest(manager, day, tuple(found[o.code] for o in manager.offices))
