"""Kill the real daemon (`mailer run`, SIGKILL) again and again while it sends a backlog, then
let it finish, and count what each requester received. Used by tests/test_crash.py and
bench/crash.py."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path

from storage.vocabulary import OutboxState
from tests import mailstack
from tests.conftest import ROOT, office_env


@dataclass
class CrashRun:
    """What a run of kills came to: kills that landed while mail was being sent, and per
    requester the Message-IDs of the acknowledgements in their mailbox."""

    kills: int = 0
    kill_s: list[float] = field(default_factory=list)
    received: dict[str, list[str]] = field(default_factory=dict)

    @property
    def lost(self) -> list[str]:
        return [who for who, ids in self.received.items() if not ids]

    @property
    def extra(self) -> int:
        """Deliveries beyond the first, over every requester."""
        return sum(max(0, len(ids) - 1) for ids in self.received.values())

    @property
    def mixed_ids(self) -> list[str]:
        """Requesters whose copies do not all carry the same Message-ID."""
        return [who for who, ids in self.received.items() if len(set(ids)) > 1]


def outbox_states(database: Path) -> Counter[str]:
    """The outbox rows by state, read without disturbing the daemon (a short read-only look)."""
    if not database.exists():
        return Counter()
    try:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)) as conn:
            return Counter(dict(conn.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall()))
    except sqlite3.OperationalError:  # not migrated yet
        return Counter()


def kill_while_sending(
    settings: Path, database: Path, total: int, kills: int, rng: random.Random, timeout_s: float = 60.0
) -> int:
    """Start `mailer run`, SIGKILL it once a few more mails went out (1 to 8, at random, then a
    random 0-30 ms), restart, `kills` times or until all `total` are sent. Returns the kills
    that landed while mail was still waiting; leaves no daemon running."""
    landed = 0
    deadline = time.monotonic() + timeout_s
    for _ in range(kills):
        before = sent(database)
        if before >= total:
            break
        proc = start(settings)
        try:
            step = rng.randint(1, 8)
            while sent(database) < min(total, before + step):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the daemon did not send as expected")
                time.sleep(0.01)
            time.sleep(rng.uniform(0, 0.03))
            if sent(database) < total:
                landed += 1
        finally:
            proc.kill()
            proc.wait(timeout=30)
    return landed


def start(settings: Path) -> subprocess.Popen[bytes]:
    """`mailer run` in a subprocess, its log appended to run.log beside the settings (a pipe
    nobody reads while it runs would fill and stop the daemon)."""
    with (settings.parent / "run.log").open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "mailer", "--settings", str(settings), "run"],
            cwd=ROOT,
            env={**os.environ, **office_env()},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def sent(database: Path) -> int:
    return outbox_states(database)[OutboxState.SENT]


def finish(settings: Path, database: Path, total: int, timeout_s: float = 60.0) -> None:
    """Run the daemon until every mail is sent, then stop it with SIGTERM."""
    log = settings.parent / "run.log"
    started_before = log.read_bytes().count(b"daemon_started") if log.exists() else 0
    proc = start(settings)
    deadline = time.monotonic() + timeout_s
    try:  # up (its signal handlers set: a SIGTERM stops it cleanly), and everything sent
        while sent(database) < total or log.read_bytes().count(b"daemon_started") == started_before:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"not all sent: {outbox_states(database)}")
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    if code != 0:
        raise RuntimeError(f"the daemon exited with {code}: see {settings.parent / 'run.log'}")


def received(requesters: list[str], settle_s: float = 1.0) -> dict[str, list[str]]:
    """Per requester, the Message-IDs of what is in their INBOX (waits for one each first)."""
    deadline = time.monotonic() + 30
    for who in requesters:
        with contextlib.suppress(TimeoutError):  # counted as lost below
            mailstack.wait_for(who, 1, timeout=max(0.1, deadline - time.monotonic()))
    time.sleep(settle_s)  # a late duplicate would have landed by now
    out: dict[str, list[str]] = {}
    for who in requesters:
        out[who] = [str(message_from_bytes(raw).get("Message-ID", "")) for raw, _ in mailstack.fetch_all(who)]
    return out
