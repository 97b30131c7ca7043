"""`mailer run`, `mailer once`, `mailer check-config`: the daemon, one pass of it, and the
settings it would run with."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections import Counter

from mailer.settings import Settings


def check_config(settings: Settings, connect: bool = False) -> int:
    """`mailer check-config [--connect]`: the settings loaded (a wrong one never gets here),
    summarised, with a warning for each placeholder value; with `connect`, a login to every
    server. 0, or 1 when a server failed."""
    from mailer.operator import probe

    print(f"{settings.file}: OK")
    print(f"  database: {settings.database_url.split('@')[-1]}")
    for o in settings.offices:
        print(
            f"  {o.code} {o.name} <{o.email}> {o.time_zone_label}, {o.sla_working_days} working days; "
            f"IMAP {o.imap.tls}://{o.imap.host}:{o.imap.port}/{o.imap.folder}, "
            f"SMTP {o.smtp.tls}://{o.smtp.host}:{o.smtp.port}"
        )
    for value in probe.placeholders(settings.file):
        print(f"  warning: placeholder, replace it before real mail goes there: {value}")
    if not connect:
        return 0
    failed = 0
    for p in probe.connect_all(settings):
        offices = ", ".join(p.offices)
        print(f"  {p.kind} {p.where} ({offices}): {'FAILED: ' + p.problem if p.problem else 'OK'}")
        failed += bool(p.problem)
    if failed:
        print(f"{failed} server login{'s' if failed != 1 else ''} failed")
    return 1 if failed else 0


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
    from mailer.operator import exporter

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    metrics = exporter.serve(settings, daemon.clock)  # after the migration Daemon() ran
    try:
        await daemon.run_forever(stop)
    finally:
        if metrics is not None:
            metrics.close()
    return 0
