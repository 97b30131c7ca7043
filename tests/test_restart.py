"""Stop, kill and restart the real daemon process: no duplicate ticket, exactly one ack each."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from storage import db
from storage.tables import OutboxRow, Ticket
from tests import mailstack
from tests.conftest import ROOT, make_mail, office_env, requester

pytestmark = [pytest.mark.mailstack, pytest.mark.usefixtures("office_mailboxes")]
OFFICE = "bps3514@bps.go.id"


def write_settings(tmp_path: Path, sending: bool, own_process: bool = False) -> Path:
    """The shipped settings.toml with the database in tmp_path, sending on or off, and the
    senders of `mailer run` in the daemon's process or in a child process (`own_process`)."""
    text = (ROOT / "settings.toml").read_text(encoding="utf-8")
    text = text.replace('path = "var/pst-mailer.sqlite3"', f'path = "{tmp_path / "pst.sqlite3"}"')
    text = text.replace("enabled = true", f"enabled = {'true' if sending else 'false'}")
    text = text.replace("own_process = false", f"own_process = {'true' if own_process else 'false'}")
    text = text.replace("port = 10143", f"port = {mailstack.STACK.imap_port}")
    text = text.replace("port = 2525", f"port = {mailstack.STACK.smtp_port}")
    # 60 requesters in a minute: above the office's hourly acknowledgement limit (30), which
    # these tests of restarts are not about
    text = text.replace("max_per_office_per_hour = 30", "max_per_office_per_hour = 1000")
    target = tmp_path / f"settings-{'send' if sending else 'nosend'}.toml"
    target.write_text(text, encoding="utf-8")
    return target


def mailer(settings: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, **office_env()}
    return subprocess.Popen(
        [sys.executable, "-m", "mailer", "--settings", str(settings), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def db_count(settings_db: Path, query_fn: Callable[[], object]) -> int:
    engine = db.make_engine(f"sqlite:///{settings_db}")
    try:
        with db.reading(engine) as s:
            return int(s.execute(query_fn()).scalar_one())  # type: ignore[call-overload]
    except OperationalError as exc:  # the daemon made the file but has not migrated it yet
        if "no such table" in str(exc):
            return 0
        raise
    finally:
        engine.dispose()


def wait_until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.05)


def tickets_in(path: Path) -> int:
    if not path.exists():
        return 0
    return db_count(path, lambda: select(func.count()).select_from(Ticket))


def sent_in(path: Path) -> int:
    if not path.exists():
        return 0
    return db_count(
        path, lambda: select(func.count()).select_from(OutboxRow).where(OutboxRow.state == "sent")
    )


def fill_office(n: int) -> list[str]:
    senders = [requester() for _ in range(n)]
    with smtplib.SMTP(mailstack.STACK.host, mailstack.STACK.smtp_port, timeout=10) as smtp:
        for who in senders:
            smtp.sendmail(who, [OFFICE], make_mail(who)[0])
    mailstack.wait_for(OFFICE, n, timeout=30)
    return senders


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> tuple[int, str]:
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=30)
    return proc.returncode, out.decode("utf-8", "replace")


SENDERS = pytest.mark.parametrize("own_process", [False, True], ids=["one-process", "sender-process"])


@SENDERS
def test_sigterm_midway_then_restart_gives_one_ack_each(tmp_path: Path, own_process: bool) -> None:
    """A daemon stopped with SIGTERM part-way through a backlog resumes where it was (its
    senders in its own process, or in a child process)."""
    senders = fill_office(120)
    settings = write_settings(tmp_path, sending=True, own_process=own_process)
    database = tmp_path / "pst.sqlite3"
    first = mailer(settings, "run")
    wait_until(lambda: tickets_in(database) >= 1)
    code, output = stop(first)
    assert code == 0, output
    assert "daemon_stopped" in output
    second = mailer(settings, "run")
    wait_until(lambda: sent_in(database) >= 120, timeout=60)
    code, output = stop(second)
    assert code == 0, output
    assert tickets_in(database) == 120
    for who in senders:
        assert len(mailstack.wait_for(who, 1)) == 1
    time.sleep(0.5)  # a late duplicate would have landed by now
    assert all(len(mailstack.fetch_all(who)) == 1 for who in senders)


def test_sigkill_between_commit_and_send_sends_exactly_once(tmp_path: Path) -> None:
    """Killed (SIGKILL) after the acks are committed but before any is sent: the next run sends
    each exactly once, and re-reading the mailbox creates no second ticket."""
    senders = fill_office(10)
    database = tmp_path / "pst.sqlite3"
    quiet = mailer(write_settings(tmp_path, sending=False), "run")
    wait_until(lambda: tickets_in(database) == 10)
    stop(quiet, signal.SIGKILL)
    assert sent_in(database) == 0
    once = mailer(write_settings(tmp_path, sending=True), "once")
    out, _ = once.communicate(timeout=60)
    assert once.returncode == 0, out.decode()
    assert tickets_in(database) == 10
    assert sent_in(database) == 10
    for who in senders:
        assert len(mailstack.wait_for(who, 1)) == 1
    again = mailer(write_settings(tmp_path, sending=True), "once")
    again.communicate(timeout=60)
    time.sleep(0.5)
    assert all(len(mailstack.fetch_all(who)) == 1 for who in senders)
    assert tickets_in(database) == 10


@SENDERS
def test_sigkill_while_sending_loses_nothing(tmp_path: Path, own_process: bool) -> None:
    """Killed (SIGKILL) in the middle of sending: after a restart every requester has an ack,
    and at most one per SMTP connection has two (senders in the daemon's process, or in its
    child process killed with it)."""
    senders = fill_office(60)
    database = tmp_path / "pst.sqlite3"
    settings = write_settings(tmp_path, sending=True, own_process=own_process)
    first = mailer(settings, "run")
    wait_until(lambda: sent_in(database) >= 5)
    stop(first, signal.SIGKILL)
    second = mailer(settings, "run")
    wait_until(lambda: sent_in(database) >= 60, timeout=60)
    stop(second)
    assert tickets_in(database) == 60
    for who in senders:
        mailstack.wait_for(who, 1)
    time.sleep(0.5)  # a late duplicate would have landed by now
    copies = [len(mailstack.fetch_all(who)) for who in senders]
    assert min(copies) == 1
    assert sum(copies) - len(senders) <= 2  # one kill: at most one duplicate per connection (2)
