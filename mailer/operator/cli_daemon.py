"""`mailer run`, `mailer once`, `mailer check-config`: the daemon, one pass of it, and the
settings it would run with."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections import Counter

from mailer.settings import Settings


def check_config(settings: Settings) -> int:
    """`mailer check-config`: the settings loaded (a wrong one never gets here), summarised; 0."""
    print(f"{settings.file}: OK")
    print(f"  database: {settings.database_url.split('@')[-1]}")
    for o in settings.offices:
        print(
            f"  {o.code} {o.name} <{o.email}> {o.time_zone_label}, {o.sla_working_days} working days; "
            f"IMAP {o.imap.tls}://{o.imap.host}:{o.imap.port}/{o.imap.folder}, "
            f"SMTP {o.smtp.tls}://{o.smtp.host}:{o.smtp.port}"
        )
    return 0


def run(settings: Settings, forever: bool) -> int:
    """`mailer run` (`forever`: until SIGTERM or SIGINT, then 0) or `mailer once` (one pass over
    every mailbox, what it did printed; 1 when a mailbox failed)."""
    return asyncio.run(_run(settings, forever))


async def _run(settings: Settings, forever: bool) -> int:
    from mailer.daemon import Daemon

    daemon = Daemon(settings)
    if not forever:
        report = await daemon.run_once()
        daemon.close()
        for code, counts in report.fetched.items():
            sent = report.sent.get(code, Counter())
            fetched = ", ".join(f"{k} {v}" for k, v in counts.items()) or "nothing new"
            sending = ", ".join(f"{k} {v}" for k, v in sent.items()) or "nothing to send"
            print(f"{code}: fetched: {fetched}; sending: {sending}")
        if report.swept is not None:
            print(f"sweep: {report.swept.summary()}")
        for code, error in report.errors.items():
            print(f"{code}: FAILED {error}", file=sys.stderr)
        return 1 if report.errors else 0
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await daemon.run_forever(stop)
    return 0
