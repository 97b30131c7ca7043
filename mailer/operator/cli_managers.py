"""`mailer report --month YYYY-MM` and `mailer digest --manager ADDRESS --preview`: what the
heads of office and the managers get, computed and rendered on demand."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mailer.operator.terminal import out
from mailer.settings import Office, Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from mailer.clock import Clock
    from mailer.delivery.outbox import OutboxSender


def monthly_report(
    settings: Settings,
    month: str,
    office: str | None,
    province: str | None,
    csv: str | None,
    html: str | None,
    send: bool,
) -> int:
    """`mailer report`: the monthly report of `office`, the offices of `province` or every office:
    a table on stdout, and `csv` / `html` files, and with `send` mail to the heads; 2 on a wrong
    month or office."""
    from pathlib import Path

    from mailer.clock import SystemClock
    from mailer.delivery.outbox import OutboxSender
    from mailer.delivery.render import Renderer
    from mailer.timed import monthly
    from storage import db

    try:
        monthly.parse_month(month)
        offices = monthly.select_offices(settings, office, province)
    except ValueError as exc:
        out(f"mailer: {exc}", file=sys.stderr)
        return 2
    except KeyError as exc:
        out(f"mailer: no office or province {exc} in the settings", file=sys.stderr)
        return 2
    engine = db.make_engine(settings.database_url)
    db.migrate(engine)
    with db.reading(engine) as s:
        months = [monthly.compute(s, o, month) for o in offices]
    columns = [c for c in monthly.CSV_COLUMNS if c not in ("name", "month")]
    out(f"{month}  " + " ".join(c for c in columns))
    for m in months:
        row = m.row()
        out(f"{month}  " + " ".join(f"{row[c] or '-':>{len(c)}}" for c in columns))
    renderer = Renderer()
    if csv:
        monthly.write_csv(Path(csv), months)
        out(f"CSV: {csv}")
    if html:
        title = "Laporan bulanan PST" if len(months) != 1 else f"Laporan bulanan PST {months[0].name}"
        Path(html).write_text(monthly.render(renderer, months, title)[2], encoding="utf-8")
        out(f"HTML: {html}")
    if send:
        clock = SystemClock()
        for code, result, reason in monthly.send(settings, engine, renderer, clock, month, offices):
            out(f"{code}: {result}{': ' + reason if reason else ''}")
        if settings.outbox.enabled:
            asyncio.run(_send_queued(settings, engine, clock, offices, OutboxSender))
    engine.dispose()
    return 0


async def _send_queued(
    settings: Settings, engine: Engine, clock: Clock, offices: Sequence[Office], sender: type[OutboxSender]
) -> None:
    """Deliver what is due now (a report queued outside office hours waits for the daemon)."""
    for office in offices:
        s = sender(office, settings.outbox, engine, clock, settings.acknowledgement.quiet_hours)
        await s.resume()
        await s.send_due()
        await s.close()


def preview_digest(
    settings: Settings, address: str, at: str | None, preview: bool, html_file: str | None
) -> int:
    """`mailer digest --manager ADDRESS --at DATETIME --preview [--html FILE]`: the digest the
    daemon would send, rendered and printed (or its HTML written); 2 on a wrong manager or time."""
    from datetime import datetime

    from mailer.clock import SystemClock
    from mailer.delivery.render import Renderer
    from mailer.timed import digest, notify
    from mailer.timed.sweep import Sweeper
    from storage import db

    if not preview:
        out("mailer: digest renders only with --preview (the daemon sends the digests)", file=sys.stderr)
        return 2
    manager = digest.manager_by_address(settings, address)
    if manager is None:
        known = ", ".join(m.person.address for m in digest.managers(settings)) or "none"
        out(f"mailer: {address} is no manager in {settings.file} (managers: {known})", file=sys.stderr)
        return 2
    tz = manager.person.calendar.tz
    try:
        now = datetime.fromisoformat(at) if at else SystemClock().now()
    except ValueError:
        out(f"mailer: --at {at!r} is not an ISO 8601 date and time", file=sys.stderr)
        return 2
    now = now.replace(tzinfo=tz) if now.tzinfo is None else now
    engine = db.make_engine(settings.database_url)
    db.migrate(engine)
    renderer = Renderer()
    with db.reading(engine) as s:
        found = Sweeper(settings, engine, renderer, SystemClock()).compose(
            s, manager, now.astimezone(tz).date(), now
        )
    subject, text, html = notify.digest_parts(renderer, found, now)
    if found.total == 0 and not settings.digest.send_empty:
        out(
            "(nothing to report: the daemon would send no digest; digest.send_empty = false)", file=sys.stderr
        )
    if html_file:
        with open(html_file, "w", encoding="utf-8") as f:
            f.write(html)
        out(f"{subject}\n-> {html_file}")
        return 0
    out(f"To: {manager.person.address}\nSubject: {subject}\n")
    out(text)
    return 0
