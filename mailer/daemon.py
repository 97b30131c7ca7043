"""The daemon: one supervised watcher per office mailbox (INBOX, Sent folder, complaint mailbox)
and one outbox sender per office.

`run_once()` does one full pass and returns what it did (cron, tests); `run_forever()` is
the same parts left running until a stop is asked for (SIGTERM/SIGINT in the CLI).
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import Engine

from mailer import log
from mailer.clock import Clock, SystemClock
from mailer.delivery.outbox import Delivery, OutboxSender
from mailer.delivery.render import Renderer
from mailer.delivery.sending import SenderProcess
from mailer.intake.budget import ByteBudget
from mailer.intake.fetch import MailboxWatcher
from mailer.model import Role
from mailer.pipeline.driver import Pipeline
from mailer.settings import Settings
from mailer.timed import aftercare
from mailer.timed.sweep import Sweeper, SweepReport
from storage import db, offices

logger = log.get(__name__)
# The order of a pass: the public's mail (the INBOX, the complaint mailbox) side by side, then
# the Sent folders, so that an answer finds the request it answers already on a ticket.
_PASS_ORDER = ((Role.INBOX, Role.COMPLAINT), (Role.SENT,))
# The mailbox threads parse and store (CPU) while the event loop talks SMTP (I/O): a shorter GIL
# switch interval than the default 5 ms lets the sender answer the server without waiting.
GIL_SWITCH_INTERVAL_S = 0.0005


def open_database(settings: Settings, clock: Clock) -> Engine:
    """Engine on the configured database, schema migrated, offices mirrored from the settings."""
    engine = db.make_engine(settings.database_url)
    db.migrate(engine)
    with db.transaction(engine) as s:
        offices.sync_offices(
            s,
            (
                {
                    "code": o.code,
                    "name": o.name,
                    "email": o.email,
                    "province_code": o.province_code,
                    "time_zone": o.time_zone,
                }
                for o in settings.offices
            ),
            clock.now(),
        )
    return engine


@dataclass
class PassReport:
    """What one pass did: per office, outcome counts of fetched mail and of sending, and errors."""

    fetched: dict[str, Counter[str]] = field(default_factory=dict)
    sent: dict[str, Counter[str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    swept: SweepReport | None = None  # reminders, escalation and digests queued (sweep.py)
    aftercare: Counter[str] = field(default_factory=Counter)  # closing, monthly report (aftercare.py)


class Daemon:
    def __init__(self, settings: Settings, clock: Clock | None = None, engine: Engine | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.engine = engine or open_database(settings, self.clock)
        self.pipeline = Pipeline(settings, self.engine, Renderer(), self.clock)
        self.senders = {
            o.code: OutboxSender(
                o, settings.outbox, self.engine, self.clock, settings.acknowledgement.quiet_hours
            )
            for o in settings.offices
        }
        budget = self.fetch_budget = ByteBudget(settings.daemon.fetch_batch_bytes)  # all mailboxes'
        self.watchers = {
            (o.code, role): MailboxWatcher(
                o, settings.daemon, self.engine, self.pipeline, self.clock, self._queued, role, budget
            )
            for o in settings.offices
            for role in (Role.INBOX, Role.COMPLAINT, Role.SENT)
            if role is Role.INBOX
            or (role is Role.SENT and o.imap.sent_folder)
            or (role is Role.COMPLAINT and o.complaint_mailbox is not None)
        }
        for (code, role), watcher in self.watchers.items():
            if role is Role.SENT:
                watcher.follows = self.watchers[(code, Role.INBOX)]
        self._loop: asyncio.AbstractEventLoop | None = None
        # --- the sweep over time (reminders, escalation, digests): sweep.py ---
        self.sweeper = Sweeper(settings, self.engine, self.pipeline.renderer, self.clock)
        self._sender_process: SenderProcess | None = None

    @property
    def sending_ready(self) -> bool:
        """False while `run_forever`'s sender process is still starting (a second or so)."""
        return self._sender_process is None or self._sender_process.ready.is_set()

    def _queued(self, office_code: str) -> None:
        """Called from a mailbox thread when a batch that may have queued mail (a new ticket's
        acknowledgement, a complaint's in a follow-up) was committed."""
        if self._loop is None:
            return
        if self._sender_process is not None:
            self._loop.call_soon_threadsafe(self._sender_process.wake, office_code)
        else:
            self._loop.call_soon_threadsafe(self.senders[office_code].wake.set)

    async def run_once(self) -> PassReport:
        """Fetch every mailbox once, then send everything due. One failing office is reported
        in `errors` and does not stop the others."""
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        report = PassReport()
        results: list[Counter[str] | BaseException] = []
        keys: list[tuple[str, Role]] = []
        for roles in _PASS_ORDER:  # answers after the requests (and complaints) they answer
            group = [k for k in self.watchers if k[1] in roles]
            keys += group
            results += await asyncio.gather(
                *(self.watchers[k].run_once() for k in group), return_exceptions=True
            )
        for (code, role), result in zip(keys, results, strict=True):
            if isinstance(result, BaseException):
                reason = f"{type(result).__name__}: {result}"
                report.errors.setdefault(code, reason)  # the INBOX's failure first
                logger.error("mailbox_failed", office=code, role=role, reason=reason)
            else:
                report.fetched.setdefault(code, Counter()).update(result)
        report.swept = await asyncio.to_thread(self.sweeper.run_once)  # after the answers just read
        # After the answer (closing quiet tickets, monthly report): aftercare.py, not this file.
        report.aftercare = await asyncio.to_thread(self._aftercare)
        if self.settings.outbox.enabled:
            sent = await asyncio.gather(*(self._drain(s) for s in self.senders.values()))
            report.sent = dict(zip(self.senders, sent, strict=True))
        return report

    async def _drain(self, sender: OutboxSender) -> Counter[str]:
        await sender.resume()
        total: Counter[str] = Counter()
        while True:
            done = await sender.send_due()
            total.update(done)
            if not done or Delivery.RETRY_CONNECTION in done:
                break
        await sender.close()
        return total

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Run every watcher and sender until `stop` is set, then stop them cleanly. The
        senders run in a child process (`outbox.own_process`, mailer/sending.py)."""
        self._loop = asyncio.get_running_loop()
        outbox = self.settings.outbox
        if outbox.enabled and not outbox.own_process:
            sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        tasks = []
        if outbox.enabled and outbox.own_process:  # started first: it is ready sooner
            self._sender_process = SenderProcess(self.settings, self.clock)
            tasks.append(asyncio.create_task(self._sender_process.run(stop), name="smtp-process"))
        tasks += [
            asyncio.create_task(w.run(stop), name=f"imap-{code}-{role}")
            for (code, role), w in self.watchers.items()
        ]
        if outbox.enabled and not outbox.own_process:
            tasks += [asyncio.create_task(s.run(stop), name=f"smtp-{c}") for c, s in self.senders.items()]
        tasks.append(asyncio.create_task(self.sweeper.run(stop, self._queued), name="sweep"))
        tasks.append(asyncio.create_task(self._aftercare_forever(stop), name="aftercare"))
        logger.info(
            "daemon_started",
            offices=list(dict.fromkeys(code for code, _ in self.watchers)),
            sending=outbox.enabled,
            sender_process=outbox.enabled and outbox.own_process,
        )
        await stop.wait()
        logger.info("daemon_stopping")
        for watcher in self.watchers.values():
            watcher.request_stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.close()
        logger.info("daemon_stopped")

    def _aftercare(self) -> Counter[str]:
        return aftercare.run_once(self.settings, self.engine, self.pipeline.renderer, self.clock)

    async def _aftercare_forever(self, stop: asyncio.Event) -> None:
        await aftercare.run_forever(stop, self.settings, self.engine, self.pipeline.renderer, self.clock)

    def close(self) -> None:
        for watcher in self.watchers.values():
            watcher.shutdown()
        self.engine.dispose()
