"""The sender process of `mailer run` (mailer/sending.py) and the pipelined SMTP client."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mailer.delivery.smtp import Submitter
from mailer.errors import PermanentError, TransientError
from mailer.settings import Secret, SmtpSettings
from tests import mailstack
from tests.conftest import ROOT, make_mail, office_env, requester
from tests.test_restart import sent_in, wait_until, write_settings

OFFICE = "bps3514@bps.go.id"


def _daemon(settings: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "mailer", "--settings", str(settings), "run"],
            cwd=ROOT,
            env={**os.environ, **office_env()},
            stdout=subprocess.DEVNULL,
            stderr=out,
        )


def _events(log: Path, name: str) -> list[dict[str, object]]:
    found = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == name:
            found.append(event)
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _sender_pid(log: Path, nth: int = 1) -> int:
    wait_until(lambda: len(_events(log, "sender_process_ready")) >= nth, timeout=60)
    return int(str(_events(log, "sender_process_started")[nth - 1]["pid"]))


@pytest.mark.mailstack
@pytest.mark.usefixtures("office_mailboxes")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_daemon_killed_takes_its_sender_process_with_it(tmp_path: Path) -> None:
    """SIGKILL of `mailer run` leaves no sender process behind to race a restarted daemon."""
    log = tmp_path / "run.log"
    daemon = _daemon(write_settings(tmp_path, sending=True, own_process=True), log)
    try:
        sender = _sender_pid(log)
        assert _alive(sender)
    finally:
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=30)
    wait_until(lambda: not _alive(sender), timeout=5)


@pytest.mark.mailstack
@pytest.mark.usefixtures("office_mailboxes")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sender_process_that_dies_is_restarted_and_sends(tmp_path: Path) -> None:
    """A sender process killed under a running daemon is replaced, and a mail that arrives
    afterwards is acknowledged exactly once; SIGTERM then stops both processes cleanly."""
    log = tmp_path / "run.log"
    database = tmp_path / "pst.sqlite3"
    daemon = _daemon(write_settings(tmp_path, sending=True, own_process=True), log)
    try:
        os.kill(_sender_pid(log), signal.SIGKILL)
        _sender_pid(log, nth=2)
        assert _events(log, "sender_process_exited")
        who = requester()
        mailstack.send(make_mail(who)[0], who, [OFFICE])
        wait_until(lambda: sent_in(database) == 1, timeout=30)
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0
    assert len(mailstack.wait_for(who, 1)) == 1
    assert _events(log, "daemon_stopped") and _events(log, "outbox_stopped")
    time.sleep(0.5)  # a duplicate would have landed by now
    assert len(mailstack.fetch_all(who)) == 1


def _submitter(stack: mailstack.Stack, password: str, ca: bool = True) -> Submitter:
    return Submitter(
        SmtpSettings(
            "localhost",
            stack.smtps_port,
            "smtps",
            OFFICE,
            Secret(password),
            Path(stack.ca_file) if ca else None,
            timeout_s=10,
        )
    )


@pytest.mark.mailstack
def test_smtps_with_login_delivers_a_message_with_a_leading_dot(stack: mailstack.Stack) -> None:
    """SMTPS with AUTH submits; a body line starting with "." arrives intact (dot-stuffing)."""
    who = requester()
    raw = f"From: {OFFICE}\r\nTo: {who}\r\nSubject: smtps\r\n\r\n.starts with a dot\r\n".encode()

    async def send() -> str:
        submitter = _submitter(stack, stack.password)
        try:
            return await submitter.send(OFFICE, who, raw)
        finally:
            await submitter.close()

    assert "queued as" in asyncio.run(send())  # Postfix accepted it
    ((landed, _),) = mailstack.wait_for(who, 1)
    assert landed.endswith(b"\r\n\r\n.starts with a dot\r\n")


@pytest.mark.mailstack
def test_smtp_login_refused_is_permanent_and_untrusted_certificate_transient(stack: mailstack.Stack) -> None:
    """A wrong password is a PermanentError naming the user; an unverifiable certificate is a
    TransientError (the connection is refused, nothing is sent)."""

    async def send(submitter: Submitter) -> None:
        try:
            await submitter.send(OFFICE, "nobody@example.com", b"Subject: x\r\n\r\nx\r\n")
        finally:
            await submitter.close()

    with pytest.raises(PermanentError, match=f"login refused for {OFFICE}"):
        asyncio.run(send(_submitter(stack, "wrong password")))
    with pytest.raises(TransientError, match="CERTIFICATE_VERIFY_FAILED"):
        asyncio.run(send(_submitter(stack, stack.password, ca=False)))
