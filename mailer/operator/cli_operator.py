"""`mailer status`, `mailer dead-letters [show|retry|dismiss]`, `mailer outbox [retry]`: the
operator's view (status.py) and actions (repair.py), printed as lines, with an exit code.

Each command opens (and migrates) the database, prints its lines and returns 0, or 1 when
something needs attention or an action failed, or 2 for an office not in the settings.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

from mailer.operator.terminal import out
from mailer.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine


@contextmanager
def _database(settings: Settings) -> Iterator[Engine]:
    """The settings' database, migrated; disposed of when the block ends."""
    from storage import db

    engine = db.make_engine(settings.database_url)
    try:
        db.migrate(engine)
        yield engine
    finally:
        engine.dispose()


def show_status(settings: Settings, office: str | None, as_json: bool) -> int:
    """`mailer status [--json]`: each office at a glance; 1 when something needs attention."""
    import json

    from mailer.clock import SystemClock
    from mailer.operator import status
    from storage import db

    with _database(settings) as engine, db.reading(engine) as s:
        now = SystemClock().now()
        found = status.collect(s, settings, now, office)
    if as_json:
        lines = [json.dumps(status.as_json(found, settings, now), indent=2)]
    else:
        lines = status.text(found, settings, now)
    out("\n".join(lines))
    return 1 if any(st.attention(settings, now) for st in found) else 0


def list_dead_letters(settings: Settings, office: str | None, resolved: bool) -> int:
    """`mailer dead-letters [--all]`: the ones not resolved (`resolved`: every one); 0."""
    from mailer.clock import SystemClock
    from mailer.operator import status
    from storage import db
    from storage.dead_letters import dead_letters

    with _database(settings) as engine, db.reading(engine) as s:
        now = SystemClock().now()
        lines = status.dead_letter_lines(dead_letters(s, office, resolved=resolved), now)
    out("\n".join(lines))
    return 0


def show_dead_letter(settings: Settings, office: str | None, dead_id: int, raw: bool) -> int:
    """`mailer dead-letters show ID [--raw]`: where, when, the whole reason and the headers (`raw`:
    the mail's exact bytes); 1 when there is no such dead letter."""
    from mailer.clock import SystemClock
    from mailer.operator import status
    from storage import db
    from storage.dead_letters import dead_letter

    with _database(settings) as engine, db.reading(engine) as s:
        now = SystemClock().now()
        dead = dead_letter(s, dead_id)
    if dead is None:
        out(f"mailer: no dead letter {dead_id}", file=sys.stderr)
        return 1
    if raw:
        sys.stdout.buffer.write(dead.raw)
        sys.stdout.flush()
        return 0
    out("\n".join(status.dead_letter_detail(dead, now)))
    return 0


def retry_dead_letters(settings: Settings, office: str | None, dead_id: int | None, every: bool) -> int:
    """`mailer dead-letters retry ID|--all`: the kept mail through the pipeline again; 1 unless
    every one was resolved."""
    from mailer.clock import SystemClock
    from mailer.operator import repair

    clock = SystemClock()
    with _database(settings) as engine:
        if every:
            done = repair.retry_dead_letters(settings, engine, clock, office)
        else:
            assert dead_id is not None  # argparse: ID or --all
            done = [repair.retry_dead_letter(settings, engine, clock, dead_id)]
    out("\n".join([r.line() for r in done] or ["(no dead letter to retry)"]))
    return 0 if all(r.result == "resolved" for r in done) else 1


def dismiss_dead_letter(settings: Settings, office: str | None, dead_id: int, reason: str) -> int:
    """`mailer dead-letters dismiss ID --reason WHY`: resolved without processing; 1 if refused."""
    from mailer.clock import SystemClock
    from mailer.operator import repair

    with _database(settings) as engine:
        ok, said = repair.dismiss_dead_letter(engine, SystemClock(), dead_id, reason)
    out(said)
    return 0 if ok else 1


def list_deliveries(settings: Settings, office: str | None, state: str | None, limit: int) -> int:
    """`mailer outbox [--state S]`: deliveries, newest first; 0."""
    from mailer.clock import SystemClock
    from mailer.operator import status
    from storage import db
    from storage.outbox import deliveries
    from storage.vocabulary import ShownOutboxState

    with _database(settings) as engine, db.reading(engine) as s:
        now = SystemClock().now()
        shown = ShownOutboxState(state) if state else None
        zones = {o.code: (o.tz, o.time_zone_label) for o in settings.offices}
        lines = status.delivery_lines(deliveries(s, office, shown, limit), now, zones)
    out("\n".join(lines))
    return 0


def retry_deliveries(
    settings: Settings,
    office: str | None,
    outbox_id: int | None,
    every: bool,
    since: str | None,
    kind: str | None,
) -> int:
    """`mailer outbox retry ID` (1 if refused, e.g. already sent) or `retry --all [--since T]
    [--kind K]`: every delivery failed since T (default: the last 24 h) back in the queue; 0."""
    from datetime import timedelta

    from mailer.clock import SystemClock
    from mailer.operator import repair

    clock = SystemClock()
    with _database(settings) as engine:
        if not every:
            assert outbox_id is not None
            ok, said = repair.retry_delivery(engine, clock, outbox_id)
            out(said)
            return 0 if ok else 1
        start = clock.now() - timedelta(hours=24)
        if since:
            parsed = _when(settings, office, since)
            if parsed is None:
                example = "2026-12-04 or 2026-12-04T08:00"
                out(
                    f"mailer outbox retry: --since {since!r} is no ISO 8601 time ({example})", file=sys.stderr
                )
                return 2
            start = parsed
        count, lines = repair.retry_failed_since(engine, clock, start, office, kind)
    out("\n".join([*lines, f"({count} deliver{'ies' if count != 1 else 'y'} back in the queue)"]))
    return 0


def _when(settings: Settings, office: str | None, text: str) -> datetime | None:
    """An ISO 8601 time; without an offset, in the office's zone (the first office's without --office)."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    if at.tzinfo is None:
        home = settings.office(office) if office else settings.offices[0]
        at = at.replace(tzinfo=home.tz)
    return at
