"""One office mailbox folder, watched: catch up from the stored cursor, then IDLE (or poll) for more.

Each office has a watcher on its INBOX (the public's mail), unless turned off one on the
account's Sent folder (officers answering from the shared mailbox), and one on its complaint
mailbox if it has one (another account: `offices.X.complaint_mailbox`); each has its own cursor,
the complaint mailbox's filed under `address/folder` (ComplaintMailbox.key).

The blocking IMAP and database work runs in the mailbox's own worker thread (one connection,
one thread); the asyncio side only supervises: reconnect with backoff, clean stop. A mailbox
that fails (bad password, server down) logs why and retries on its own; the others go on.
Each session's outcome is noted in connection_health (`mailer status` alerts on a mailbox that
has not worked for a while): a failure at once, a success at most once a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Protocol, TypeVar

import structlog
from sqlalchemy import Engine

from mailer import log, metrics
from mailer.backoff import Backoff
from mailer.clock import Clock
from mailer.errors import PermanentError
from mailer.intake.budget import ByteBudget
from mailer.intake.imap import MailboxClient
from mailer.model import FetchedMail, Outcome, Role
from mailer.settings import DaemonSettings, Office
from storage import cursors, db, health

logger = log.get(__name__)
T = TypeVar("T")
# Mails stored per commit when catching up a backlog: the commit is shared, each mail keeps its
# own savepoint, and the write lock is held for tens of milliseconds at most.
COMMIT_EVERY = 25


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def byte_batches(uids: Sequence[int], sizes: Mapping[int, int | None], max_bytes: int) -> Iterator[list[int]]:
    """The UIDs in order, cut into FETCH batches of at most `max_bytes` by the sizes the server
    gave (RFC822.SIZE). A mail bigger than that comes alone; so does one of unknown size. A UID
    without an entry in `sizes` is gone (expunged meanwhile) and left out. A server that
    understates a size only makes its batch bigger than planned: the fetched bytes are what
    the parse step goes by (mailer/pipeline/reading.py)."""
    batch: list[int] = []
    total = 0
    for uid in uids:
        if uid not in sizes:
            continue
        size = sizes[uid]
        size = max_bytes if size is None else size
        if batch and total + size > max_bytes:
            yield batch
            batch, total = [], 0
        batch.append(uid)
        total += size
    if batch:
        yield batch


class BatchProcessor(Protocol):
    """What the watcher hands its mail to: the pipeline (mailer/pipeline/driver.py)."""

    def process_batch(self, batch: Sequence[FetchedMail]) -> list[Outcome]: ...


class MailboxWatcher:
    """Fetches one office's mailbox into the pipeline."""

    def __init__(
        self,
        office: Office,
        daemon: DaemonSettings,
        engine: Engine,
        pipeline: BatchProcessor,
        clock: Clock,
        on_queued: Callable[[str], None] = lambda _office: None,
        role: Role = Role.INBOX,
        budget: ByteBudget | None = None,
    ) -> None:
        """`budget`: the bytes all the daemon's mailboxes may hold at once (one per daemon;
        a watcher alone has its own)."""
        self.office, self.daemon, self.engine = office, daemon, engine
        self.budget = budget or ByteBudget(daemon.fetch_batch_bytes)
        self.pipeline, self.clock, self.on_queued, self.role = pipeline, clock, on_queued, role
        folder, imap = office.imap.sent_folder, office.imap
        if role is Role.INBOX:
            folder = office.imap.folder
        elif role is Role.COMPLAINT:
            assert office.complaint_mailbox is not None
            imap = office.complaint_mailbox.imap
            folder = imap.folder
        elif folder == "auto":
            folder = MailboxClient.AUTO_SENT
        self.client = MailboxClient(imap, folder)
        self.stopping = threading.Event()
        # Set once the folder is caught up. The Sent watcher waits for its office's INBOX watcher
        # to be caught up: an answer must find the request it answers already on a ticket.
        self.caught_up = asyncio.Event()
        self.follows: MailboxWatcher | None = None
        name = f"imap-{office.code}" if role is Role.INBOX else f"imap-{office.code}-{role}"
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._log = logger.bind(office=office.code, mailbox=self.key)
        self.channel = f"imap:{role}"
        self._ok_noted_at: datetime | None = None

    @property
    def key(self) -> str:
        """How this mailbox's mail and cursor are filed: the folder's name (the Sent folder's
        once found), or the complaint mailbox's `address/folder`."""
        if self.role is Role.COMPLAINT and self.office.complaint_mailbox is not None:
            return self.office.complaint_mailbox.key
        return self.client.folder

    # --- blocking work, in the mailbox thread --------------------------------------------

    def connect(self) -> None:
        state = self.client.connect()
        self._log = self._log.bind(mailbox=self.key)
        self._log.info(
            "mailbox_connected", uidvalidity=state.uidvalidity, exists=state.exists, idle=self.client.can_idle
        )

    def sync(self) -> Counter[str]:
        """Process every mail after the cursor; returns outcome counts."""
        office, folder = self.office, self.key
        state = self.client.examine()
        with db.reading(self.engine) as s:
            cursor = cursors.get_cursor(s, office.code, folder)
        last_uid = 0
        if cursor is not None and cursor[0] == state.uidvalidity:
            last_uid = cursor[1]
        elif cursor is not None:
            self._log.warning(
                "uidvalidity_changed",
                old=cursor[0],
                new=state.uidvalidity,
                action="resync; duplicates are recognised by Message-ID and content",
            )
        done: Counter[str] = Counter()
        first_look = cursor is None or cursor[0] != state.uidvalidity
        if state.uidnext and state.uidnext <= last_uid + 1:
            if first_look:
                self._read_empty(state.uidvalidity)
            self.note_ok()
            return done  # UIDNEXT has not moved: nothing new
        uids = self.client.uids_after(last_uid)
        if not uids and first_look:
            self._read_empty(state.uidvalidity)
        budget = self.daemon.fetch_batch_bytes
        for chunk in _chunks(uids, self.daemon.fetch_batch):
            sizes = self.client.sizes(chunk)
            for batch in byte_batches(chunk, sizes, budget):
                planned = sum(budget if sizes[uid] is None else sizes[uid] or 0 for uid in batch)
                with self.budget.holding(planned, self.stopping.is_set) as taken:
                    if taken:
                        done.update(self._process(batch, state.uidvalidity))
                if self.stopping.is_set():
                    break
            if self.stopping.is_set():
                break
        if uids:
            self._log.info("mailbox_synced", **{str(k): v for k, v in done.items()})
        self.note_ok()
        return done

    def note_ok(self) -> None:
        """Note that this mailbox works (written at most once a minute, at once after a failure)."""
        now = self.clock.now()
        if self._ok_noted_at is not None and now - self._ok_noted_at < health.NOTE_EVERY:
            return
        with db.transaction(self.engine) as s:
            health.record_ok(s, self.office.code, self.channel, now)
        self._ok_noted_at = now

    def note_failure(self, reason: str) -> None:
        """Note why this mailbox failed (kept for `mailer status`; a database down too is only logged)."""
        self._ok_noted_at = None
        try:
            with db.transaction(self.engine) as s:
                health.record_failure(s, self.office.code, self.channel, reason, self.clock.now())
        except Exception as exc:  # the database may be the trouble: the log has the reason
            self._log.warning("health_not_recorded", reason=f"{type(exc).__name__}: {exc}")

    def _process(self, uids: Sequence[int], uidvalidity: int) -> list[Outcome]:
        """FETCH one batch and run it through the pipeline, COMMIT_EVERY mails per commit. Its
        bytes are let go on return, before the next batch is fetched."""
        office, folder = self.office, self.key
        fetched = [
            FetchedMail(office.code, folder, uidvalidity, uid, raw, received_at, self.role)
            for uid, raw, received_at in self.client.fetch(uids)
        ]
        done: list[Outcome] = []
        for group in _chunks(fetched, COMMIT_EVERY):
            outcomes = self.pipeline.process_batch(group)
            done.extend(outcomes)
            _count(office.code, self.role, outcomes)
            if Outcome.TICKET_CREATED in outcomes or Outcome.FOLLOWUP in outcomes:
                self.on_queued(office.code)  # committed: the sender may go (an ack, a complaint's)
        return done

    def _read_empty(self, uidvalidity: int) -> None:
        """A folder read for the first time (or after a UIDVALIDITY change) and found empty: its
        cursor is stored all the same, so `mailer status` tells a read folder from one never read."""
        with db.transaction(self.engine) as s:
            cursors.save_cursor(s, self.office.code, self.key, uidvalidity, 0, self.clock.now())

    def wait(self) -> bool:
        return self.client.wait_for_change(
            self.daemon.idle_timeout_s if self.client.can_idle else self.daemon.poll_interval_s,
            self.stopping.is_set,
        )

    # --- asyncio side ----------------------------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        ctx = structlog.contextvars.get_contextvars()

        def bound() -> T:
            with structlog.contextvars.bound_contextvars(**ctx):
                return fn(*args)

        return await loop.run_in_executor(self._executor, bound)

    async def run_once(self) -> Counter[str]:
        """Connect, catch up, disconnect. Raises what the connection raised (noted first)."""
        try:
            await self._call(self.connect)
            return await self._call(self.sync)
        except Exception as exc:
            await self._call(self.note_failure, f"{type(exc).__name__}: {exc}")
            raise
        finally:
            await self._call(self.client.close)
            self.caught_up.set()  # caught up or failed: nobody waits on it any longer

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until `stop` is set; never raises. A failure (the server, the network, the
        database) is retried after reconnect_min_s, doubling up to reconnect_max_s, with one
        log line per burst of failures; the wait starts again from the minimum only once a
        sync has succeeded (a database that fails after each login does not reset it)."""
        retry = Backoff(
            "mailbox_disconnected",
            "mailbox_reconnected",
            self._log,
            self.clock,
            self.daemon.reconnect_min_s,
            self.daemon.reconnect_max_s,
            level="warning",  # servers drop idle connections now and then
        )
        if self.follows is not None:
            await _first(self.follows.caught_up, stop)
        while not stop.is_set():
            wait_s = 0.0
            try:
                await self._call(self.connect)
                while not stop.is_set():
                    await self._call(self.sync)
                    retry.succeeded()
                    self.caught_up.set()
                    await self._call(self.wait)
                    await self._call(self.note_ok)  # IDLE or NOOP answered: still working
            except PermanentError as exc:
                self._log.error("mailbox_failed", reason=str(exc), retry_in_s=self.daemon.reconnect_max_s)
                await self._call(self.note_failure, str(exc))
                wait_s = self.daemon.reconnect_max_s
            except Exception as exc:
                wait_s = retry.failed(exc)
                await self._call(self.note_failure, f"{type(exc).__name__}: {exc}")
            finally:
                await self._call(self.client.close)
            if not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=wait_s)
        self._log.info("mailbox_stopped")

    def request_stop(self) -> None:
        self.stopping.set()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)


def _count(office: str, role: Role, outcomes: list[Outcome]) -> None:
    """The metrics endpoint's counters: mails by outcome, tickets opened."""
    for outcome, n in Counter(outcomes).items():
        metrics.MAILS_FETCHED.labels(office, role, outcome).inc(n)
    opened = outcomes.count(Outcome.TICKET_CREATED)
    if opened:
        metrics.TICKETS_OPENED.labels(office).inc(opened)


async def _first(*events: asyncio.Event) -> None:
    """Wait until any of the events is set."""
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
