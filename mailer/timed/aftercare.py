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
from mailer.clock import Clock
from mailer.delivery.render import Renderer
from mailer.settings import Settings
from mailer.timed import closing, monthly

logger = log.get(__name__)
INTERVAL_S = 60.0  # how often the daemon looks: closing needs no better than a minute


def run_once(settings: Settings, engine: Engine, renderer: Renderer, clock: Clock) -> Counter[str]:
    """One pass; returns counts of what it did (closed, closed_without_mail, report_queued, …).
    A failure is logged and the other part still runs."""
    done: Counter[str] = Counter()
    try:
        done.update(closing.close_quiet(settings, engine, renderer, clock))
    except Exception as exc:
        logger.error("closing_pass_failed", reason=f"{type(exc).__name__}: {exc}", exc_info=exc)
    if settings.report.send_monthly:
        try:
            done.update(monthly.send_due(settings, engine, renderer, clock))
        except Exception as exc:
            logger.error("monthly_report_pass_failed", reason=f"{type(exc).__name__}: {exc}", exc_info=exc)
    return done


async def run_forever(
    stop: asyncio.Event, settings: Settings, engine: Engine, renderer: Renderer, clock: Clock
) -> None:
    """`run_once` every INTERVAL_S (in a worker thread) until `stop` is set; never raises."""
    while not stop.is_set():
        await asyncio.to_thread(run_once, settings, engine, renderer, clock)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=INTERVAL_S)
