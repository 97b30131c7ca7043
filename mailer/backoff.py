"""Backing off while something we depend on (the database, mostly) keeps failing.

A loop that fails waits 1 s, 2 s, 4 s … up to a cap before it tries again, instead of
retrying at once and logging a traceback each time: one line when a burst of failures starts
(and again only if the reason changes), one when it ends, with how many failed and for how long.
The wait itself is a parameter (`Pause`) so that tests run the loops on a fake clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from mailer.clock import Clock

Pause = Callable[[float, asyncio.Event], Awaitable[None]]
DB_RETRY_MIN_S = 0.5
DB_RETRY_MAX_S = 60.0


async def pause(seconds: float, stop: asyncio.Event) -> None:
    """Wait `seconds`, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def reason_of(exc: BaseException) -> str:
    """`Type: message`, on one line, without SQLAlchemy's SQL and background link."""
    text = str(exc).split("\n", 1)[0]
    return f"{type(exc).__name__}: {text}"[:300]


class Backoff:
    """Delays of a failing loop (min_s, doubling, capped at max_s) and its log lines: `event`
    (at `level`) at the first failure of a burst or when the reason changes, `recovered` (info) at
    the first success after a burst."""

    def __init__(
        self,
        event: str,
        recovered: str,
        log: Any,  # a structlog logger with its context bound (office, mailbox, …)
        clock: Clock,
        min_s: float = DB_RETRY_MIN_S,
        max_s: float = DB_RETRY_MAX_S,
        level: str = "error",
    ) -> None:
        self.event, self.recovered, self.log, self.clock = event, recovered, log, clock
        self.min_s, self.max_s, self.level = min_s, max_s, level
        self.failures = 0
        self._since: datetime | None = None
        self._reason = ""

    def failed(self, exc: BaseException, with_traceback: bool = False, **context: object) -> float:
        """Count a failure; returns how long to wait before the next attempt. `with_traceback`:
        an unexpected error (a bug, not the database failing), its traceback on the line."""
        self.failures += 1
        delay = float(min(self.min_s * 2.0 ** (self.failures - 1), self.max_s))
        reason = reason_of(exc)
        if self.failures == 1 or reason != self._reason:
            if self.failures == 1:
                self._since = self.clock.now()
            extra: dict[str, object] = {"exc_info": exc} if with_traceback else {}
            self.log.error(
                self.event, reason=reason, failures=self.failures, retry_in_s=delay, **context, **extra
            )
            self._reason = reason
        return delay

    def succeeded(self, **context: object) -> None:
        """The thing works again: say so once, and start the next burst from min_s."""
        if self.failures:
            lasted = (self.clock.now() - self._since).total_seconds() if self._since else 0.0
            self.log.info(self.recovered, failures=self.failures, lasted_s=round(lasted, 1), **context)
        self.failures, self._since, self._reason = 0, None, ""
