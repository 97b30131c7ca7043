"""The sweep over time: decide (escalate.py, digest.py) → render (notify.py) → outbox.

Run by the daemon every `escalation.sweep_interval_s` and once by `mailer once`. Each level is
one query for every office (sweeps.notice_candidates); each recipient gets one mail per sweep
listing the tickets that reached their level. The notice rows (unique per ticket, clock round
and level: a fresh clock climbs the ladder again, a pause does not) and the digest row (unique
per manager and day) are written in the transaction that queues the mail, so a notice or a
digest is queued exactly once across restarts and sweeps; the outbox sends it once. Nothing
is queued for a person outside their working hours (escalate.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Engine
from sqlmodel import Session

from mailer import log, metrics
from mailer.backoff import Backoff
from mailer.clock import Clock
from mailer.delivery.queue import enqueue
from mailer.delivery.render import Renderer
from mailer.settings import Office, Settings
from mailer.timed import digest, escalate, notify
from storage import db, sweeps
from storage.sweeps import add_digest, add_notices, notice_candidates
from storage.vocabulary import MessageKind, NoticeLevel

logger = log.get(__name__)
SWEEP_RETRY_MAX_S = 600.0
MAX_TICKETS_PER_LEVEL = 500  # per sweep; the rest goes a sweep later


@dataclass
class SweepReport:
    """What one sweep did: mails queued per office, notices per level, digests sent and found
    empty, and the rungs held because their recipient was off work."""

    queued: Counter[str] = field(default_factory=Counter)
    notices: Counter[str] = field(default_factory=Counter)
    digests: int = 0
    empty_digests: int = 0
    held: int = 0

    def summary(self) -> str:
        levels = ", ".join(f"{k} {v}" for k, v in sorted(self.notices.items())) or "no notices"
        waiting = f"; {self.held} office/level rungs wait for working hours" if self.held else ""
        return f"{levels}; digests {self.digests} (empty {self.empty_digests}){waiting}"


class Sweeper:
    def __init__(self, settings: Settings, engine: Engine, renderer: Renderer, clock: Clock) -> None:
        self.settings, self.engine, self.renderer, self.clock = settings, engine, renderer, clock
        self.managers = digest.managers(settings)

    def run_once(self) -> SweepReport:
        """One sweep at the clock's time: notices, then digests."""
        now, report = self.clock.now(), SweepReport()
        with metrics.SWEEP_SECONDS.time():
            plan = escalate.plan(self.settings, now)
            report.held = len(plan.held)
            for level, rungs in sorted(plan.due.items()):
                with db.transaction(self.engine) as s:
                    self._notices(s, level, rungs, now, report)
            self._digests(now, report)
        return report

    def _notices(
        self, s: Session, level: NoticeLevel, rungs: list[escalate.Rung], now: datetime, report: SweepReport
    ) -> None:
        after = now if level is NoticeLevel.REMINDER else None
        found = notice_candidates(s, level, escalate.groups(rungs), after, MAX_TICKETS_PER_LEVEL)
        if not found:
            return
        texts = sweeps.request_texts(s, [t.id for t in found])
        by_office: dict[str, list[sweeps.DueTicket]] = defaultdict(list)
        for ticket in found:
            by_office[ticket.office_code].append(ticket)
        e, name = self.settings.escalation, level.label
        province = level is NoticeLevel.PROVINCE_HEAD
        days = e.level2_after_working_days if province else e.level3_after_working_days
        for rung in rungs:
            office, tickets = rung.office, by_office.get(rung.office.code, [])
            if not tickets:
                continue
            lines = [digest.line(office, t, now, texts.get(t.id, "")) for t in tickets]
            share = escalate.reminder_share(self.settings, office)
            out = notify.notice(self.renderer, office, level, rung.recipient, lines, now, share, days)
            single = tickets[0].id if len(tickets) == 1 else None
            outbox_id = enqueue(s, office, single, MessageKind.NOTICE, name, out, now, quiet_after=now)
            add_notices(
                s,
                [
                    {"ticket_id": t.id, "clock_round": t.clock_round, "level": level,
                     "recipient": rung.recipient.address, "outbox_id": outbox_id, "due_at": t.due_at,
                     "created_at": now}
                    for t in tickets
                ],
            )  # fmt: skip
            report.queued[office.code] += 1
            report.notices[name] += len(tickets)
            logger.info(
                "notice_queued",
                office=office.code,
                mailbox=office.email,
                ticket=[t.ref for t in tickets],
                clock_round=[t.clock_round for t in tickets],
                level=name,
                to=rung.recipient.address,
                outbox_id=outbox_id,
            )

    def sections(
        self, s: Session, offices: Sequence[Office], now: datetime
    ) -> dict[str, digest.OfficeSection]:
        """Every office's digest section as of `now`: five queries for all the offices."""
        ends: dict[datetime, list[str]] = defaultdict(list)
        for office in offices:
            ends[digest.end_of_day(office, now)].append(office.code)
        groups = [(codes, end) for end, codes in ends.items()]
        counts = sweeps.digest_counts(s, groups, now)
        tickets = sweeps.digest_tickets(s, groups, self.settings.digest.max_tickets_per_office)
        texts = sweeps.request_texts(s, [t.id for t in tickets])
        last = sweeps.last_digests(s, {o.head for o in offices if o.head})
        withheld = sweeps.withheld_notices(s, digest.withheld_since(offices, last, now))
        return digest.sections(offices, now, counts, tickets, texts, withheld)

    def compose(self, s: Session, manager: digest.Manager, day: date, now: datetime) -> digest.Digest:
        """A manager's digest of `day` as of `now` (for `mailer digest --preview`)."""
        return digest.build(manager, day, self.sections(s, manager.offices, now))

    def _digests(self, now: datetime, report: SweepReport) -> None:
        """The digests due at `now` and not yet done: the sections of all their offices read
        once, then one transaction per manager (re-checking it was not done meanwhile)."""
        local_time = self.settings.digest.local_time
        due = [(m, day) for m in self.managers if (day := digest.digest_day(m, local_time, now)) is not None]
        if not due:
            return
        with db.reading(self.engine) as s:
            done = sweeps.digests_done(s, {day.isoformat() for _, day in due})
            todo = [(m, day) for m, day in due if (m.person.address, day.isoformat()) not in done]
            offices = list({o.code: o for m, _ in todo for o in m.offices}.values())
            found = self.sections(s, offices, now) if todo else {}
        for manager, day in todo:
            with db.transaction(self.engine) as s:
                if not sweeps.digest_done(s, manager.person.address, day.isoformat()):
                    self._digest(s, digest.build(manager, day, found), now, report)

    def _digest(self, s: Session, found: digest.Digest, now: datetime, report: SweepReport) -> None:
        manager, day = found.manager, found.day.isoformat()
        address, sender = manager.person.address, manager.sender
        context = {"office": sender.code, "mailbox": sender.email, "to": address, "day": day}
        if found.total == 0 and not found.withheld and not self.settings.digest.send_empty:
            sweeps.add_digest(s, address, day, 0, None, now)
            report.empty_digests += 1
            logger.info("digest_empty", **context, role=manager.role)
            return
        out = notify.digest_mail(self.renderer, found, now)
        outbox_id = enqueue(s, sender, None, MessageKind.DIGEST, manager.role, out, now, quiet_after=now)
        add_digest(s, address, day, found.total, outbox_id, now)
        report.digests += 1
        report.queued[sender.code] += 1
        logger.info("digest_queued", **context, role=manager.role, tickets=found.total, outbox_id=outbox_id)

    async def run(self, stop: asyncio.Event, queued: Callable[[str], None]) -> None:
        """Sweep every `escalation.sweep_interval_s` until `stop`; wake the senders of the
        offices that queued mail (`queued(office_code)`). Never raises: a failing sweep (the
        database down, a template broken) is tried again after the interval, doubling up to
        SWEEP_RETRY_MAX_S, with one log line per burst of failures."""
        interval_s = self.settings.escalation.sweep_interval_s
        retry = Backoff(
            "sweep_failed",
            "sweep_recovered",
            logger,
            self.clock,
            interval_s,
            max(interval_s, SWEEP_RETRY_MAX_S),
        )
        while not stop.is_set():
            wait_s = interval_s
            try:
                report = await asyncio.to_thread(self.run_once)
            except Exception as exc:
                wait_s = retry.failed(exc, with_traceback=not db.is_failure(exc))
            else:
                retry.succeeded()
                for code in report.queued:
                    queued(code)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait_s)
