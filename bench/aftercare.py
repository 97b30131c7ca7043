"""How long the after-the-answer work takes on a busy office: the closing pass over N quiet
answered tickets (render, guard, enqueue, one transaction each) and the monthly report's
figures over a month of N tickets (with their events and ratings). SQLite in a temporary
folder, no mail servers; it prints figures, it does not pass or fail.

    .venv/bin/python -P bench/aftercare.py [-n 2000]

(-P: bench/threading.py would otherwise shadow the stdlib's threading module.)
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mailer.clock import FrozenClock  # noqa: E402
from mailer.daemon import open_database  # noqa: E402
from mailer.delivery.render import Renderer  # noqa: E402
from mailer.settings import load_settings  # noqa: E402
from mailer.timed import closing, monthly  # noqa: E402  (after the path set-up, to run as a script)
from storage import db, ratings  # noqa: E402
from storage.messages import add_message  # noqa: E402
from storage.tickets import add_ticket, add_ticket_event  # noqa: E402
from storage.vocabulary import Direction, MessageKind, Resolution, TicketKind, TicketState  # noqa: E402


def fill(engine: object, n: int, start: datetime) -> None:
    """N answered tickets of office 3514 received over November, a third of them rated."""
    with db.transaction(engine) as s:  # type: ignore[arg-type]
        for i in range(n):
            received = start + timedelta(minutes=17 * i % (60 * 24 * 25))
            answered = received + timedelta(hours=3)
            ticket_id = add_ticket(
                s, ref=f"PST-3514-2026-{i + 1:05d}", office_code="3514", state=TicketState.ANSWERED,
                kind=TicketKind.REQUEST, requester_email=f"warga{i}@example.com", requester_name="Warga",
                subject=f"Permintaan data {i}", subject_key="", language="id", received_at=received,
                due_at=received, first_response_at=answered,
                first_response_by="dewi@bps.go.id", resolution=Resolution.ANSWERED, state_changed_at=answered,
                last_message_at=answered, message_count=2, created_at=received,
            )  # fmt: skip
            add_message(
                s, office_code="3514", ticket_id=ticket_id, direction=Direction.IN, kind=MessageKind.REQUEST,
                reason="", message_id=f"m{i}@example.com", dedupe_key=f"k{i}",
                from_email=f"warga{i}@example.com",
                subject=f"Permintaan data {i}", stored_at=received, body_text="Mohon data.",
                raw_sha256="0" * 64, raw=b"x",
            )  # fmt: skip
            add_ticket_event(
                s, ticket_id=ticket_id, message_pk=None, at=answered, event="answered",
                state=TicketState.ANSWERED, actor="dewi@bps.go.id", detail="",
            )  # fmt: skip
            if i % 3 == 0:
                ratings.save_rating(s, ticket_id, "3514", 1 + i % 4, "reply", "x@example.com", None, answered)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000)
    args = parser.parse_args()
    env = {
        **os.environ,
        **{f"PST_MAIL_PASSWORD_{c}": "x" for c in ("3571", "3576", "3514", "8205", "1808", "3571_PENGADUAN")},
    }
    with tempfile.TemporaryDirectory() as tmp:
        settings = dataclasses.replace(
            load_settings(ROOT / "settings.toml", environ=env), database_url=f"sqlite:///{tmp}/b.sqlite3"
        )
        clock = FrozenClock(datetime(2026, 12, 1, 2, 0, tzinfo=UTC))  # Tue 1 Dec 09:00 WIB
        engine = open_database(settings, clock)
        fill(engine, args.n, datetime(2026, 11, 1, 1, 0, tzinfo=UTC))
        t0 = time.perf_counter()
        with db.reading(engine) as s:
            figures = monthly.compute(s, settings.office("3514"), "2026-11")
        t1 = time.perf_counter()
        html = monthly.render(Renderer(), [figures], "bench")[2]
        t2 = time.perf_counter()
        done = closing.close_quiet(settings, engine, Renderer(), clock)
        t3 = time.perf_counter()
        engine.dispose()  # type: ignore[attr-defined]
    print(f"tickets                 {args.n}")
    print(f"monthly figures         {t1 - t0:.2f} s  ({args.n / (t1 - t0):,.0f} tickets/s)  {figures.row()}")
    print(f"monthly HTML page       {t2 - t1:.3f} s  ({len(html):,} bytes)")
    rate = done[closing.Closed.CLOSED] / (t3 - t2)
    closed = done[closing.Closed.CLOSED]
    print(f"closing pass            {t3 - t2:.2f} s  ({closed} closed and mailed, {rate:,.0f} tickets/s)")


if __name__ == "__main__":
    main()
