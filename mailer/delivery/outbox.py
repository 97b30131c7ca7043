"""Delivery of the outbox, one sender per office (each office's SMTP can fail alone).

A mail is rendered into the outbox inside the transaction that stored the request (queue.py),
so nothing is sent before it is committed. The sender takes due rows oldest first; one commit per
mail records the previous one `sent` and marks the next `sending` (in flight), then submits it.
Failures are recorded at once: `pending` again with a backoff (4xx, connection trouble) or
`failed` (5xx, too many attempts). Each of the office's SMTP connections (`outbox.connections`)
is a lane with at most one mail in flight.

The transaction that records a mail accepted is opened before DATA (db.HeldWrite; on SQLite
it takes the write lock there, waiting for the mailbox threads' commits before the mail goes
rather than after): between the server's 250 and our commit there is only the commit. The
price: while a server takes its time over DATA (up to the SMTP timeout), other writers wait.
Once the server has answered, its answer is recorded whatever the database does: the write is
retried with backoff until it succeeds (the submission itself is never repeated), and while it
fails the sender claims nothing more, so no more than one mail per lane is ever accepted and
not yet recorded. A process killed at that moment leaves those rows `sending`; the next start
puts them back and sends them again, byte for byte (same Message-ID, which mail clients fold).
So a crash costs at most one duplicate per connection, and loses nothing (README, "Restarts").

What was queued may no longer be wanted when its turn comes: the claim (outbox.advance_outbox)
re-checks the recipient's flag (a bounce or complaint read later in the same backlog) and, for a
mail to a ticket's requester, whether an officer settled the ticket as spam or duplicate. Such a
mail becomes `suppressed` for good, in the same commit, with the reason in last_error. A mail
that would go out in the quiet hours of the night for something that arrived long before
(quiet.py) is held until they end, still `pending`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from mailer import backoff, log, metrics
from mailer.backoff import Backoff
from mailer.clock import Clock
from mailer.decide import quiet
from mailer.delivery.guard import suppression_reason
from mailer.delivery.smtp import Submitter
from mailer.errors import LoginRefused, PermanentError, RecipientDeferred, TransientError
from mailer.settings import Office, OutboxSettings
from storage import db, health, outbox
from storage.health import SMTP_CHANNEL
from storage.outbox import (
    OutboxItem,
    advance_outbox,
    hold_outbox,
    outbox_hindrance,
    settle_outbox,
    suppress_outbox,
)
from storage.vocabulary import OutboxState, ShownOutboxState

logger = log.get(__name__)
_IDLE_WAIT_S = 5.0
_RECORD_MAX_S = 10.0  # a mail accepted but not recorded is tried again at least this often
T = TypeVar("T")


class Taken(StrEnum):
    """What claiming a due mail came to (advance_outbox, then why not)."""

    SENDING = OutboxState.SENDING  # in flight: submit it
    SUPPRESSED = OutboxState.SUPPRESSED  # never to go (the reason in last_error)
    HELD = "held"  # still pending, until the quiet hours end
    SKIPPED = "skipped"  # no longer pending: another sender or an operator had it


class Delivery(StrEnum):
    """What submitting one mail came to. With Taken's, the keys of a round's counts."""

    SENT = OutboxState.SENT  # accepted; recorded sent by the lane's next commit
    FAILED = OutboxState.FAILED  # refused for good, or out of attempts
    DEFERRED = ShownOutboxState.DEFERRED  # pending again: the recipient's server said later
    RETRY_CONNECTION = "retry_connection"  # pending again: the server is in trouble, the round stops


class OutboxSender:
    """Sends one office's pending mail."""

    def __init__(
        self,
        office: Office,
        settings: OutboxSettings,
        engine: Engine,
        clock: Clock,
        quiet_hours: tuple[str, str],
    ) -> None:
        self.office, self.settings, self.engine, self.clock = office, settings, engine, clock
        self.quiet_hours = quiet_hours  # acknowledgement.quiet_hours, office local time
        self.submitters = [Submitter(office.smtp) for _ in range(settings.connections)]
        self.wake = asyncio.Event()
        self.pause: backoff.Pause = backoff.pause  # tests put a fake clock's here
        self._log = logger.bind(office=office.code, mailbox=office.imap.username)
        self._ok_noted_at: datetime | None = None
        self._worked = False  # a mail went in this round: the SMTP server works (noted after it)
        self._trouble = asyncio.Event()  # set when the database failed in this round: claim no more
        self._turn = asyncio.Lock()  # the lanes' turns at the write transaction opened before DATA

    def _tx(self, fn: Callable[..., T], *args: Any) -> T:
        with db.transaction(self.engine) as s:
            return fn(s, *args)

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a storage function in its own transaction, off the event loop."""
        return await asyncio.to_thread(self._tx, fn, *args)

    def _advance_on(
        self, conn: Connection, sent_id: int | None, item: OutboxItem | None
    ) -> tuple[Taken, str]:
        now = self.clock.now()
        hold = (
            None
            if item is None
            else quiet.hold_until(item.quiet_after, now, self.office.tz, self.quiet_hours)
        )
        sending_id = item.id if item is not None and hold is None else None
        if advance_outbox(conn, sent_id, sending_id, now) or item is None:
            return Taken.SENDING, ""
        found = outbox_hindrance(conn, item.id)
        reason = suppression_reason(found) if found is not None else ""
        if reason and suppress_outbox(conn, item.id, reason):
            return Taken.SUPPRESSED, reason
        if hold is not None and found is not None and found.state == OutboxState.PENDING:
            hold_outbox(conn, item.id, hold)
            return Taken.HELD, hold.astimezone(self.office.tz).isoformat(timespec="minutes")
        return Taken.SKIPPED, found.state if found is not None else "gone"

    def _advance_tx(
        self, held: Connection | None, sent_id: int | None, item: OutboxItem | None
    ) -> tuple[Taken, str]:
        if held is None:
            with db.statements(self.engine) as conn:
                return self._advance_on(conn, sent_id, item)
        try:  # the transaction opened before DATA (db.HeldWrite)
            taken = self._advance_on(held, sent_id, item)
            held.commit()
            return taken
        finally:
            held.close()  # rolled back if not committed

    async def _advance(
        self, sent_id: int | None, item: OutboxItem | None, held: Connection | None = None
    ) -> tuple[Taken, str]:
        """Record `sent_id` sent and take `item`, in one commit (of `held`, the transaction
        opened before DATA, if given), off the loop. Returns what became of `item` (Taken):
        (SENDING, "") in flight, submit it; (SUPPRESSED, why) never to go; (HELD, until) for the
        end of the quiet hours; (SKIPPED, state) taken elsewhere."""
        return await asyncio.to_thread(self._advance_tx, held, sent_id, item)

    async def resume(self) -> None:
        """Put back what a stopped process left half-sent."""
        count = await self._db(outbox.release_interrupted, self.office.code)
        if count:
            self._log.warning(
                "outbox_resumed_in_flight",
                count=count,
                note="sent again; a duplicate only if the server accepted it just before the stop",
            )

    async def send_due(self, stop: asyncio.Event | None = None) -> Counter[str]:
        """One round: submit the due mails, oldest first, over the office's connections (each a
        lane with at most one mail in flight). Returns counts by result.
        Raises the database's error, once every lane has recorded what it sent."""
        items = await self._db(outbox.due_outbox, self.office.code, self.clock.now(), self.settings.batch)
        queue: asyncio.Queue[outbox.OutboxItem] = asyncio.Queue()
        for item in items:
            queue.put_nowait(item)
        self._trouble = asyncio.Event()
        lanes = [self._lane(submitter, queue, stop) for submitter in self.submitters[: max(1, len(items))]]
        done: Counter[str] = Counter()
        failure: BaseException | None = None
        for counts in await asyncio.gather(*lanes, return_exceptions=True):
            if isinstance(counts, BaseException):
                failure = failure or counts
            else:
                done.update(counts)
        if failure is not None:
            raise failure
        for result, n in done.items():
            metrics.DELIVERIES.labels(self.office.code, result).inc(n)
        if self._worked:  # noted after the lanes recorded what they sent, never inside that window
            self._worked = False
            await self._note_ok()
        return done

    async def _commit(
        self, held: db.HeldWrite, sent_id: int | None, item: OutboxItem | None
    ) -> tuple[Taken, str]:
        """`_advance` in the transaction `held` opened before DATA (if it was), then its turn given up."""
        try:
            return await self._advance(sent_id, item, held.take())
        finally:
            held.release()

    async def _submit(self, submitter: Submitter, item: OutboxItem, held: db.HeldWrite) -> str:
        try:
            return await submitter.send(item.envelope_from, item.envelope_to, item.raw, held.open)
        except BaseException:
            await asyncio.to_thread(held.close)  # before a failure is recorded: it holds the lock
            held.release()
            raise

    async def _lane(
        self, submitter: Submitter, queue: asyncio.Queue[outbox.OutboxItem], stop: asyncio.Event | None
    ) -> Counter[str]:
        done: Counter[str] = Counter()
        sent_id: int | None = None
        held = db.HeldWrite(self.engine, self._turn)
        while not queue.empty() and not (stop is not None and stop.is_set()) and not self._trouble.is_set():
            item = queue.get_nowait()
            try:
                taken, detail = await self._commit(held, sent_id, item)
            except Exception:
                # The previous mail was accepted: record it before anything else (and put the
                # claim back, in case its commit went through after all). Then the round stops.
                self._trouble.set()
                await self._record(stop, sent_id, settle_outbox, sent_id, item.id, self.clock.now())
                raise
            sent_id = None
            if taken is not Taken.SENDING:
                self._not_taken(item, taken, detail)
                done[taken] += 1
                continue
            held = db.HeldWrite(self.engine, self._turn)
            try:
                result = await self._deliver(submitter, item, stop, held)
            except Exception:  # the database failed before DATA: nothing was submitted
                self._trouble.set()
                await self._record(stop, item.id, settle_outbox, None, item.id, self.clock.now())
                raise
            done[result] += 1
            sent_id = item.id if result is Delivery.SENT else None
            if result is Delivery.RETRY_CONNECTION:
                break  # the server is in trouble: the rest waits for the next round
        if sent_id is not None:
            try:
                await self._commit(held, sent_id, None)
            except Exception:
                self._trouble.set()
                await self._record(stop, sent_id, settle_outbox, sent_id, None, self.clock.now())
                raise
        return done

    async def _record(
        self, stop: asyncio.Event | None, outbox_id: int | None, fn: Callable[..., T], *args: Any
    ) -> None:
        """Write what the server said about a submission (`fn(session, *args)`), retried with
        backoff until it is written; the submission is never repeated. Gives up only when
        asked to stop: the row stays `sending` and goes again at the next start."""
        log = self._log.bind(outbox_id=outbox_id)
        retry = Backoff("outcome_not_recorded", "outcome_recorded", log, self.clock, max_s=_RECORD_MAX_S)
        never = asyncio.Event()
        while True:
            try:
                await self._db(fn, *args)
            except Exception as exc:
                self._trouble.set()
                delay = retry.failed(exc, with_traceback=not db.is_failure(exc))
                if stop is not None and stop.is_set():
                    log.error(
                        "outcome_left_unrecorded", note="the row stays sending: sent again at the next start"
                    )
                    return
                await self.pause(delay, stop or never)
            else:
                retry.succeeded()
                return

    def _not_taken(self, item: OutboxItem, taken: Taken, detail: str) -> None:
        log = self._log.bind(
            outbox_id=item.id, ticket=item.ticket_ref, message_id=item.message_id, to=item.envelope_to
        )
        if taken is Taken.SUPPRESSED:
            log.warning("mail_suppressed", reason=detail)
        elif taken is Taken.HELD:
            log.info("mail_held", until=detail, reason="quiet hours: it arrived long ago, not sent at night")
        else:
            log.info("mail_not_taken", state=detail)

    async def _deliver(
        self, submitter: Submitter, item: OutboxItem, stop: asyncio.Event | None, held: db.HeldWrite
    ) -> Delivery:
        """Submit `item`; the write transaction that records its acceptance is opened (`held`)
        once the server took the envelope, before DATA. Records a failure at once (retried)."""
        log = self._log.bind(
            outbox_id=item.id, ticket=item.ticket_ref, message_id=item.message_id, to=item.envelope_to
        )
        try:
            reply = await self._submit(submitter, item, held)
        except LoginRefused as exc:  # not the mail's fault: it waits, uncounted, the operator is told
            retry_at = self.clock.now() + timedelta(seconds=self.settings.retry_max_s)
            await self._record(stop, item.id, outbox.postpone_outbox, item.id, str(exc), retry_at)
            self._ok_noted_at = None
            with contextlib.suppress(Exception):  # the health note is for `mailer status`: best effort
                await self._db(
                    health.record_failure, self.office.code, SMTP_CHANNEL, str(exc), self.clock.now()
                )
            log.error("smtp_login_refused", reason=str(exc), retry_in_s=self.settings.retry_max_s)
            return Delivery.RETRY_CONNECTION
        except PermanentError as exc:
            await self._record(stop, item.id, outbox.mark_failed, item.id, str(exc), self.clock.now())
            log.error("mail_failed", reason=str(exc), attempts=item.attempts + 1)
            return Delivery.FAILED
        except TransientError as exc:
            attempts = item.attempts + 1
            if attempts >= self.settings.max_attempts:
                why = f"gave up after {attempts} attempts: {exc}"
                await self._record(stop, item.id, outbox.mark_failed, item.id, why, self.clock.now())
                log.error("mail_failed", reason=str(exc), attempts=attempts)
                return Delivery.FAILED
            delay = min(self.settings.retry_min_s * 2 ** (attempts - 1), self.settings.retry_max_s)
            retry_at = self.clock.now() + timedelta(seconds=delay)
            await self._record(stop, item.id, outbox.mark_retry, item.id, str(exc), retry_at)
            log.warning("mail_deferred", reason=str(exc), attempts=attempts, retry_in_s=delay)
            return Delivery.DEFERRED if isinstance(exc, RecipientDeferred) else Delivery.RETRY_CONNECTION
        log.info("mail_sent", reply=reply.strip()[:120])  # recorded `sent` by the lane's next commit
        self._worked = True
        return Delivery.SENT

    async def _note_ok(self) -> None:
        """Note that the SMTP server works (at most once a minute, at once after a failure)."""
        now = self.clock.now()
        if self._ok_noted_at is not None and now - self._ok_noted_at < health.NOTE_EVERY:
            return
        self._ok_noted_at = now
        with contextlib.suppress(
            Exception
        ):  # for `mailer status` only: a failing database is the round's to report
            await self._db(health.record_ok, self.office.code, SMTP_CHANNEL, now)

    async def _wait(self, stop: asyncio.Event) -> None:
        try:
            due = await self._db(outbox.next_outbox_due, self.office.code)
        except Exception:  # the database is down: wait the default, the next round will say why
            due = None
        timeout = _IDLE_WAIT_S
        if due is not None:
            timeout = max(0.05, min(timeout, (due - self.clock.now()).total_seconds()))
        waiters = [asyncio.ensure_future(self.wake.wait()), asyncio.ensure_future(stop.wait())]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()

    async def run(self, stop: asyncio.Event) -> None:
        """Send until `stop` is set; never raises. While the database fails, the rounds back
        off (0.5 s doubling to a minute) with one log line per burst of failures."""
        retry = Backoff("outbox_round_failed", "outbox_rounds_resumed", self._log, self.clock)
        resumed = False
        while not stop.is_set():
            try:
                if not resumed:
                    await self.resume()
                    resumed = True
                self.wake.clear()  # a wake-up from here on is seen by the wait below
                done = await self.send_due(stop)
            except Exception as exc:
                await self.pause(retry.failed(exc, with_traceback=not db.is_failure(exc)), stop)
                continue
            retry.succeeded()
            if not done or Delivery.RETRY_CONNECTION in done:
                await self._wait(stop)
        await self.close()
        self._log.info("outbox_stopped")

    async def close(self) -> None:
        for submitter in self.submitters:
            await submitter.close()
