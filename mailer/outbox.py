"""Delivery of the outbox, one sender per office (each office's SMTP can fail alone).

A mail is rendered into the outbox inside the transaction that stored the request, so
nothing is sent before it is committed. The sender takes due rows oldest first; one commit per
mail records the previous one `sent` and marks the next `sending` (in flight), then submits it.
Failures are recorded at once: `pending` again with a backoff (4xx, connection trouble) or
`failed` (5xx, too many attempts). Each of the office's SMTP connections (`outbox.connections`) is a lane
with at most one mail in flight, so a killed process leaves at most that many rows `sending`;
they go back to `pending` at the next start and are sent then. The only window for a
duplicate is between the server's final 250 and our next commit, a few milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Engine
from sqlmodel import Session

from mailer import log
from mailer.clock import Clock
from mailer.errors import PermanentError, RecipientDeferred, TransientError
from mailer.settings import Office, OutboxSettings
from mailer.smtp import Submitter
from storage import db, repo

if TYPE_CHECKING:  # not at run time: the sender process does without jinja2 and babel
    from mailer.render import Outgoing

logger = log.get(__name__)
_IDLE_WAIT_S = 5.0
T = TypeVar("T")


def enqueue(
    s: Session, office: Office, ticket_id: int | None, kind: str, reason: str, out: Outgoing, now: datetime
) -> int:
    """Store a rendered mail on its ticket and queue it for delivery, inside the caller's
    transaction (nothing is sent before that commits). Returns the outbox id."""
    message_pk = repo.add_message(
        s,
        office_code=office.code,
        ticket_id=ticket_id,
        direction="out",
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
    return repo.add_outbox(
        s,
        office_code=office.code,
        message_pk=message_pk,
        ticket_id=ticket_id,
        envelope_from=out.envelope_from,
        envelope_to=out.envelope_to,
        next_attempt_at=now,
        created_at=now,
    )


class OutboxSender:
    """Sends one office's pending mail."""

    def __init__(self, office: Office, settings: OutboxSettings, engine: Engine, clock: Clock) -> None:
        self.office, self.settings, self.engine, self.clock = office, settings, engine, clock
        self.submitters = [Submitter(office.smtp) for _ in range(settings.connections)]
        self.wake = asyncio.Event()
        self._log = logger.bind(office=office.code)

    def _tx(self, fn: Callable[..., T], *args: Any) -> T:
        with db.transaction(self.engine) as s:
            return fn(s, *args)

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a repo function in its own transaction, off the event loop."""
        return await asyncio.to_thread(self._tx, fn, *args)

    def _advance_tx(self, sent_id: int | None, sending_id: int | None) -> None:
        with db.statements(self.engine) as conn:
            repo.advance_outbox(conn, sent_id, sending_id, self.clock.now())

    async def _advance(self, sent_id: int | None, sending_id: int | None) -> None:
        """Record `sent_id` sent and mark `sending_id` in flight, in one commit, off the loop."""
        await asyncio.to_thread(self._advance_tx, sent_id, sending_id)

    async def resume(self) -> None:
        """Put back what a stopped process left half-sent."""
        count = await self._db(repo.release_interrupted, self.office.code)
        if count:
            self._log.warning(
                "outbox_resumed_in_flight",
                count=count,
                note="sent again; a duplicate only if the server accepted it just before the stop",
            )

    async def send_due(self, stop: asyncio.Event | None = None) -> Counter[str]:
        """One round: submit the due mails, oldest first, over the office's connections (each a
        lane with at most one mail in flight). Returns counts by result."""
        items = await self._db(repo.due_outbox, self.office.code, self.clock.now(), self.settings.batch)
        queue: asyncio.Queue[repo.OutboxItem] = asyncio.Queue()
        for item in items:
            queue.put_nowait(item)
        lanes = [self._lane(submitter, queue, stop) for submitter in self.submitters[: max(1, len(items))]]
        done: Counter[str] = Counter()
        for counts in await asyncio.gather(*lanes):
            done.update(counts)
        return done

    async def _lane(
        self, submitter: Submitter, queue: asyncio.Queue[repo.OutboxItem], stop: asyncio.Event | None
    ) -> Counter[str]:
        done: Counter[str] = Counter()
        sent_id: int | None = None
        while not queue.empty() and not (stop is not None and stop.is_set()):
            item = queue.get_nowait()
            await self._advance(sent_id, item.id)
            result = await self._deliver(submitter, item)
            done[result] += 1
            sent_id = item.id if result == "sent" else None
            if result == "retry_connection":
                break  # the server is in trouble: the rest waits for the next round
        if sent_id is not None:
            await self._advance(sent_id, None)
        return done

    async def _deliver(self, submitter: Submitter, item: repo.OutboxItem) -> str:
        log = self._log.bind(
            outbox_id=item.id, ticket=item.ticket_ref, message_id=item.message_id, to=item.envelope_to
        )
        try:
            reply = await submitter.send(item.envelope_from, item.envelope_to, item.raw)
        except PermanentError as exc:
            await self._db(repo.mark_failed, item.id, str(exc), self.clock.now())
            log.error("mail_failed", reason=str(exc), attempts=item.attempts + 1)
            return "failed"
        except TransientError as exc:
            attempts = item.attempts + 1
            if attempts >= self.settings.max_attempts:
                await self._db(
                    repo.mark_failed, item.id, f"gave up after {attempts} attempts: {exc}", self.clock.now()
                )
                log.error("mail_failed", reason=str(exc), attempts=attempts)
                return "failed"
            delay = min(self.settings.retry_min_s * 2 ** (attempts - 1), self.settings.retry_max_s)
            retry_at = self.clock.now() + timedelta(seconds=delay)
            await self._db(repo.mark_retry, item.id, str(exc), retry_at)
            log.warning("mail_deferred", reason=str(exc), attempts=attempts, retry_in_s=delay)
            return "deferred" if isinstance(exc, RecipientDeferred) else "retry_connection"
        log.info("mail_sent", reply=reply.strip()[:120])  # recorded `sent` by the caller's next commit
        return "sent"

    async def _wait(self, stop: asyncio.Event) -> None:
        try:
            due = await self._db(repo.next_outbox_due, self.office.code)
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
        """Send until `stop` is set; never raises."""
        resumed = False
        while not stop.is_set():
            if not resumed:
                try:
                    await self.resume()
                    resumed = True
                except Exception as exc:
                    self._log.error("outbox_resume_failed", reason=f"{type(exc).__name__}: {exc}")
                    await self._wait(stop)
                    continue
            self.wake.clear()  # a wake-up from here on is seen by the wait below
            try:
                done = await self.send_due(stop)
            except Exception as exc:
                self._log.error("outbox_round_failed", reason=f"{type(exc).__name__}: {exc}", exc_info=exc)
                done = Counter()
            if not done or "retry_connection" in done:
                await self._wait(stop)
        await self.close()
        self._log.info("outbox_stopped")

    async def close(self) -> None:
        for submitter in self.submitters:
            await submitter.close()
