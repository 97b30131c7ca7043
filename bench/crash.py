"""Crash bench: duplicates per SIGKILL of `mailer run` while it sends a backlog (real stack).

    .venv/bin/python bench/crash.py [-n 200] [--kills 15] [--own-process] [--seed 1]

The office INBOX (bps3514@bps.go.id, on the stack the tests use: tests/mailstack.py) is cleared
and loaded with N requests from N fresh requesters; the daemon is started and killed with SIGKILL
`--kills` times while it sends (tests/crashing.py), then run to the end and stopped. Prints the
kills that landed while mail waited, extra deliveries, extra per kill, requesters without an
ack, and requesters whose copies carry different Message-IDs. It is not a test.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import crashing, mailstack  # noqa: E402  (after the path set-up)
from tests.test_restart import fill_office, write_settings  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument("--kills", type=int, default=15)
    parser.add_argument("--own-process", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    mailstack.ensure_up()
    mailstack.clear("bps3514@bps.go.id")
    requesters = fill_office(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        settings = write_settings(Path(tmp), sending=True, own_process=args.own_process)
        database = Path(tmp) / "pst.sqlite3"
        started = time.monotonic()
        landed = crashing.kill_while_sending(
            settings, database, args.n, args.kills, random.Random(args.seed), timeout_s=600
        )
        crashing.finish(settings, database, args.n, timeout_s=600)
        run = crashing.CrashRun(kills=landed, received=crashing.received(requesters))
        took_s = time.monotonic() - started
    per_kill = run.extra / run.kills if run.kills else 0.0
    print(
        f"mails={args.n} own_process={args.own_process} kills_landed={run.kills} extra={run.extra} "
        f"extra_per_kill={per_kill:.2f} lost={len(run.lost)} mixed_message_ids={len(run.mixed_ids)} "
        f"took_s={took_s:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
