"""What happens after the answer, on a timer: quiet answered tickets are closed with a closing
mail (closing.py), and on the first working day of a month last month's report goes to the
heads of office (monthly.py). The daemon calls `run_once` every pass and keeps `run_forever`
running beside its mailbox watchers; `mailer once` runs it once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

from sqlalchemy import Engine

from mailer import log
from mailer.backoff import Backoff
from mailer.clock import Clock
from mailer.delivery.render import Renderer
from mailer.settings import Settings
from mailer.timed import closing, monthly
from storage import db

logger = log.get(__name__)
INTERVAL_S = 60.0  # how often the daemon looks: closing needs no better than a minute


def run_once(
    settings: Settings,
    engine: Engine,
    renderer: Renderer,
    clock: Clock,
    retries: dict[str, Backoff] | None = None,
) -> Counter[str]:
    """One pass; returns counts of what it did (closed, closed_without_mail, report_queued, …).
    A failure is logged and the other part still runs; with `retries` (run_forever's), one log
    line per burst of failures of a part instead of one per pass."""
    done: Counter[str] = Counter()
    parts = [("closing_pass_failed", closing.close_quiet)]
    if settings.report.send_monthly:
        parts.append(("monthly_report_pass_failed", monthly.send_due))
    for event, part in parts:
        retry = (retries or {}).get(event) or Backoff(event, f"{event}_over", logger, clock)
        try:
            done.update(part(settings, engine, renderer, clock))
        except Exception as exc:
            retry.failed(exc, with_traceback=not db.is_failure(exc))
        else:
            retry.succeeded()
    return done


async def run_forever(
    stop: asyncio.Event, settings: Settings, engine: Engine, renderer: Renderer, clock: Clock
) -> None:
    """`run_once` every INTERVAL_S (in a worker thread) until `stop` is set; never raises."""
    retries = {
        event: Backoff(event, recovered, logger, clock)
        for event, recovered in (
            ("closing_pass_failed", "closing_pass_recovered"),
            ("monthly_report_pass_failed", "monthly_report_pass_recovered"),
        )
    }
    while not stop.is_set():
        await asyncio.to_thread(run_once, settings, engine, renderer, clock, retries)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=INTERVAL_S)
