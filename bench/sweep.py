"""Benchmark: the sweep over a database of 1,000,000 tickets (5% open) on SQLite.

    .venv/bin/python bench/sweep.py [-n 1000000] [--open-share 0.05] [--offices 514] [--rounds 5]

It prints figures; it is not a test. The database is built once (executemany in one
transaction, indexes after the load) and cached in bench/out/sweep-N.sqlite3; the sweep's own
rows are reset before each figure. Offices: the shipped five cloned to --offices offices in 38
provinces (WIB and WIT calendars, 2 or 3 working days), each with a head; a PST head per province
and the national level. Open tickets were received over the last 30 working days (most overdue),
closed ones over three years. Times are at Wednesday 25 November 2026 10:00 WIB.

Figures:
- find: what one sweep must find: the four levels' candidates (no notice yet; the worst case,
  before any was sent) and every manager's digest (counts, listed tickets, excerpts).
- sweep, steady: `Sweeper.run_once()` once the notices went out and the day's digests are done:
  what the daemon does every minute.
- sweep, morning: `Sweeper.run_once()` rendering and queueing every manager's digest (once a day).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # the project, not bench/ (bench/threading.py would shadow the stdlib's)

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402

from mailer import log  # noqa: E402
from mailer.clock import FrozenClock  # noqa: E402
from mailer.daemon import open_database  # noqa: E402
from mailer.decide import sla  # noqa: E402
from mailer.delivery.render import Renderer  # noqa: E402
from mailer.settings import Province, Settings, load_settings  # noqa: E402
from mailer.timed import digest, escalate  # noqa: E402
from mailer.timed.sweep import MAX_TICKETS_PER_LEVEL, Sweeper  # noqa: E402
from storage import db, overview, sweeps  # noqa: E402
from storage.vocabulary import Direction, MessageKind, NoticeLevel, TicketKind, TicketState  # noqa: E402

OUT = ROOT / "bench" / "out"
NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # Wednesday 10:00 WIB
BODY = (
    "Yth. Bapak/Ibu petugas PST,\n\nSaya mohon data jumlah penduduk miskin per kecamatan tahun 2024 "
    "untuk penelitian skripsi saya. Terima kasih.\n\nSalam,\nRina"
)


def bench_settings(path: Path, offices: int) -> Settings:
    env = {
        **os.environ,
        **{f"PST_MAIL_PASSWORD_{c}": "x" for c in ("3571", "3576", "3514", "8205", "1808", "3571_PENGADUAN")},
    }
    shipped = load_settings(ROOT / "settings.toml", environ=env)
    base_provinces = list(shipped.provinces.values())
    provinces = {}
    for j in range(38):
        model = base_provinces[1] if j % 7 == 6 else base_provinces[0]  # some WIT (Maluku Utara)
        code = f"{11 + j:02d}00"
        provinces[code] = dataclasses.replace(
            model, code=code, name=f"BPS Provinsi {code}", head=f"kepala.pst{code}@bps.go.id"
        )
    cloned = []
    for i in range(offices):
        model = shipped.offices[i % len(shipped.offices)]
        province = list(provinces)[i % 38]
        zone = provinces[province]
        code = f"{province[:2]}{i // 38 + 1:02d}"
        cloned.append(
            dataclasses.replace(
                model,
                code=code,
                email=f"bps{code}@bps.go.id",
                head=f"kepala{code}@bps.go.id",
                province_code=province,
                time_zone=zone.time_zone,
                time_zone_label=zone.time_zone_label,
            )
        )
    assert len({o.code for o in cloned}) == offices
    return dataclasses.replace(
        shipped,
        database_url=f"sqlite:///{path}",
        offices=tuple(cloned),
        provinces=dict[str, Province](provinces),
        log_format="json",
        log_level="warning",
    )


def stamp(at: datetime) -> str:
    """The text SQLAlchemy stores for a UTC datetime on SQLite."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def build(settings: Settings, path: Path, n: int, open_share: float) -> None:
    """The database of n tickets, one request message per open ticket."""
    t0 = time.perf_counter()
    engine = open_database(settings, FrozenClock(NOW))
    engine.dispose()
    rng = random.Random(42)
    offices = settings.offices
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name IN ('tickets','messages') "
        "AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    n_open = int(n * open_share)
    cols = (
        "id, ref, office_code, state, kind, requester_email, requester_name, subject, subject_key, language, "
        "received_at, due_at, last_message_at, message_count, created_at, last_officer"
    )
    due_cache: dict[tuple[str, str], datetime] = {}
    tickets, messages = [], []
    for i in range(1, n + 1):
        office = offices[i % len(offices)]
        is_open = i > n - n_open
        if is_open:  # within the last 30 working days, at an office hour
            start = sla.shift_working_days(office, NOW, -rng.uniform(0, 30))
            start = start.replace(minute=0, second=0, microsecond=0)
            key = (office.code, start.isoformat())
            due = due_cache.get(key) or due_cache.setdefault(key, sla.due_at(office, start))
        else:
            start = NOW - timedelta(days=rng.uniform(31, 3 * 365))
            due = start + timedelta(days=2)
        closed, answered = TicketState.CLOSED, TicketState.ANSWERED
        state = TicketState.OPEN if is_open else rng.choice((closed, closed, closed, answered))
        received, due_s = stamp(start), stamp(due)
        tickets.append(
            (i, f"PST-{office.code}-{start.year}-{i:07d}", office.code, state, TicketKind.REQUEST,
             f"warga{i}@example.com", f"Warga {i}", "Permohonan data kemiskinan",
             "permohonan data kemiskinan", "id", received, due_s, received, 1, received,
             "andi@bps.go.id" if i % 3 == 0 else "")
        )  # fmt: skip
        if is_open:
            messages.append(
                (office.code, i, Direction.IN, MessageKind.REQUEST, "", f"m{i}@example.com", f"mid:{i}",
                 f"warga{i}@example.com", "", office.email, "Permohonan data kemiskinan", received, BODY, "",
                 "0" * 64, b"x")
            )  # fmt: skip
    conn.executemany(f"INSERT INTO tickets ({cols}) VALUES ({', '.join('?' * 16)})", tickets)
    conn.executemany(
        "INSERT INTO messages (office_code, ticket_id, direction, kind, reason, message_id, dedupe_key, "
        "from_email, from_name, to_emails, subject, stored_at, body_text, defects, raw_sha256, raw) "
        f"VALUES ({', '.join('?' * 16)})",
        messages,
    )
    for _, sql in indexes:
        conn.execute(sql)
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()
    print(f"built {n:,} tickets ({n_open:,} open) in {time.perf_counter() - t0:.1f} s -> {path}")


def reset(path: Path) -> None:
    conn = sqlite3.connect(path)
    for table in ("ticket_notices", "digests", "outbox"):
        conn.execute(f"DELETE FROM {table}")
    conn.execute("DELETE FROM messages WHERE direction = 'out'")
    conn.commit()
    conn.close()


def find_notices(settings: Settings, sweeper: Sweeper) -> dict[int, int]:
    """What one sweep looks for in notices at NOW (as many as a sweep takes): {level: tickets}."""
    plan = escalate.plan(settings, NOW)
    found = {}
    with db.reading(sweeper.engine) as s:
        for level, rungs in plan.due.items():
            after = NOW if level == NoticeLevel.REMINDER else None
            found[level] = len(
                sweeps.notice_candidates(s, level, escalate.groups(rungs), after, MAX_TICKETS_PER_LEVEL)
            )
    return found


def find_digests(settings: Settings, sweeper: Sweeper) -> int:
    """Every manager's digest at NOW, built and not rendered: tickets listed in all of them."""
    with db.reading(sweeper.engine) as s:
        sections = sweeper.sections(s, settings.offices, NOW)
    digests = [digest.build(m, NOW.date(), sections) for m in sweeper.managers]
    return sum(len(x.lines) for d in digests for x in d.sections)


def mark_notified(settings: Settings, engine: object) -> None:
    """Record every notice as sent, as the first sweeps would have (without rendering 100,000 mails)."""
    end = datetime(9999, 1, 1, tzinfo=UTC)
    with db.transaction(engine) as s:  # type: ignore[arg-type]
        for level in NoticeLevel:
            every = [([o.code for o in settings.offices], end)]
            rows = sweeps.notice_candidates(s, level, every, None, 10**9)
            sweeps.add_notices(
                s,
                [{"ticket_id": t.id, "clock_round": t.clock_round, "level": level, "recipient": "x",
                  "outbox_id": None, "due_at": t.due_at, "created_at": NOW} for t in rows],
            )  # fmt: skip


def timed(fn: object, rounds: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(rounds):
        t0 = time.perf_counter()
        result = fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return times, result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=1_000_000)
    parser.add_argument("--open-share", type=float, default=0.05)
    parser.add_argument("--offices", type=int, default=514)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    log.configure("json", "warning")
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"sweep-{args.n}-{args.offices}.sqlite3"
    settings = bench_settings(path, args.offices)
    if not path.exists():
        build(settings, path, args.n, args.open_share)
    reset(path)
    engine = open_database(settings, FrozenClock(NOW))
    sweeper = Sweeper(settings, engine, Renderer(), FrozenClock(NOW))
    with db.reading(engine) as s:
        counts = overview.counts(s)
    managers = digest.managers(settings)
    print(
        f"{counts['tickets']:,} tickets, {len(settings.offices)} offices, {len(managers)} managers; "
        f"at {NOW} UTC"
    )

    times, levels = timed(lambda: find_notices(settings, sweeper), args.rounds)
    names = ", ".join(f"{NoticeLevel(k).label} {v:,}" for k, v in sorted(levels.items()))
    notices_s = statistics.median(times)
    print(f"find notices (plan + 4 level queries, none sent yet, up to {MAX_TICKETS_PER_LEVEL} per level): "
          f"median {notices_s:.3f} s, min {min(times):.3f} s  [{names}]")  # fmt: skip
    times, listed = timed(lambda: find_digests(settings, sweeper), args.rounds)
    print(f"find digests ({len(managers)} managers, {listed:,} ticket lines): "
          f"median {statistics.median(times):.3f} s, min {min(times):.3f} s")  # fmt: skip
    print(
        f"find, all (a morning sweep's decisions): {notices_s + statistics.median(times):.3f} s"
        "   target < 1 s"
    )

    mark_notified(settings, engine)
    t0 = time.perf_counter()
    done = sweeper.run_once()
    print(f"sweep, morning ({done.digests} digests rendered and queued, {done.empty_digests} empty): "
          f"{time.perf_counter() - t0:.3f} s (once a day)")  # fmt: skip
    times, _ = timed(sweeper.run_once, args.rounds)
    print(f"sweep, steady (every minute: notices sent, digests done): "
          f"median {statistics.median(times):.3f} s, "
          f"min {min(times):.3f} s   target < 1 s")  # fmt: skip
    engine.dispose()


if __name__ == "__main__":
    main()
