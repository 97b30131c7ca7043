"""`mailer status` sees broken connections (issue 15, item 3): each mailbox's and SMTP server's
last working session and last error are recorded by the daemon on the real stack; a wrong IMAP
password, a silent mailbox and a refused SMTP login make status exit 1; a refused SMTP login
fails no mail; `mailer outbox retry --all` puts back a day of failed deliveries."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from mailer.clock import FrozenClock, SystemClock
from mailer.daemon import Daemon
from mailer.errors import ConfigError
from mailer.operator import cli
from mailer.settings import Secret, Settings, SmtpSettings, load_settings
from storage import db, health
from storage.outbox import mark_failed
from storage.tables import OutboxRow
from tests import mailstack
from tests.conftest import make_mail, office_env, project_settings, requester
from tests.test_end_to_end import deliver
from tests.test_operator import ingest
from tests.test_settings import PASSWORD, write_settings

pytestmark = [pytest.mark.mailstack, pytest.mark.usefixtures("office_mailboxes")]


def once(settings: Settings, clock: FrozenClock | None = None) -> None:
    daemon = Daemon(settings, clock=clock)
    try:
        asyncio.run(daemon.run_once())
    finally:
        daemon.close()


def status(settings: Settings, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = cli.main(["status", *args], settings=settings)
    return code, capsys.readouterr().out


def outbox_rows(settings: Settings) -> list[OutboxRow]:
    engine = db.make_engine(settings.database_url)
    with db.reading(engine) as s:
        rows = list(s.execute(select(OutboxRow).order_by(OutboxRow.id)).scalars())
    engine.dispose()
    return rows


def test_wrong_imap_password_makes_status_exit_1_with_the_servers_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a pass with 3571's password wrong, status shows its INBOX FAILING with Dovecot's
    refusal and exits 1 (text and JSON); 3514, read fine, needs nothing."""
    settings = project_settings(tmp_path, PST_MAIL_PASSWORD_3571="wrong-password")
    once(settings)
    code, out = status(settings, capsys)
    assert code == 1
    assert "ATTENTION 3571: mailbox INBOX not read ever: " in out and "login refused for bps3571" in out
    assert "FAILING for" in out
    assert not [line for line in out.splitlines() if line.startswith("ATTENTION 3514")]
    code, out = status(settings, capsys, "--json")
    (kediri,) = [o for o in json.loads(out)["offices"] if o["office"] == "3571"]
    inbox = kediri["mailboxes"][0]
    assert code == 1 and inbox["worked_at"] is None and inbox["failing_since"] is not None
    assert "login refused" in inbox["last_error"]


def test_a_mailbox_last_read_long_ago_is_reported_silent(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mailbox whose last working session was two hours ago (the daemon stopped) alerts with
    its age; right after a pass it is fine."""
    two_hours_ago = FrozenClock(SystemClock().now() - timedelta(hours=2))
    once(settings, two_hours_ago)
    code, out = status(settings, capsys, "--office", "3514")
    assert code == 1 and "ATTENTION 3514: mailbox INBOX not read for 2h 0m" in out
    once(settings)
    code, out = status(settings, capsys, "--office", "3514")
    assert code == 0 and "worked 0s ago" in out


def with_smtp_login(settings: Settings, stack: mailstack.Stack, password: str) -> Settings:
    """3514 sending through the stack's SMTPS port with a login (the shipped loopback relay has none)."""
    smtp = SmtpSettings(
        "localhost", stack.smtps_port, "smtps", "bps3514@bps.go.id", Secret(password), Path(stack.ca_file), 10
    )
    offices = tuple(dataclasses.replace(o, smtp=smtp) if o.code == "3514" else o for o in settings.offices)
    return dataclasses.replace(settings, offices=offices)


def test_refused_smtp_login_keeps_the_mail_waiting_and_alerts_until_fixed(
    settings: Settings, stack: mailstack.Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    """With 3514's SMTP password wrong the acknowledgement stays pending with no attempt
    counted (not failed), status exits 1 "SMTP login refused"; with the password fixed the next
    round after the wait sends it and the alert is gone."""
    settings = dataclasses.replace(settings, outbox=dataclasses.replace(settings.outbox, retry_max_s=5.0))
    who = requester()
    deliver(make_mail(who)[0], who)
    clock = FrozenClock(SystemClock().now())  # the wait stays short: no quiet hours come into it
    once(with_smtp_login(settings, stack, "wrong password"), clock)
    (ack,) = outbox_rows(settings)
    assert (ack.state, ack.attempts) == ("pending", 0) and "login refused" in ack.last_error
    code, out = status(settings, capsys, "--office", "3514")
    assert code == 1 and "ATTENTION 3514: SMTP login refused for" in out
    clock.advance(timedelta(seconds=6))
    once(with_smtp_login(settings, stack, stack.password), clock)
    (ack,) = outbox_rows(settings)
    assert ack.state == "sent" and len(mailstack.wait_for(who, 1)) == 1
    code, out = status(settings, capsys, "--office", "3514")
    assert "SMTP login refused" not in out and "smtp     worked" in out


def test_outbox_retry_all_puts_back_the_days_failures_only(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """`outbox retry --all` takes the delivery failed an hour ago, not the one failed two days
    ago; `--since` reaches that one too; `--kind notice` none of them."""
    now = SystemClock().now()
    engine = ingest(settings, FrozenClock(now), "rina@example.com")
    ingest(settings, FrozenClock(now), "budi@example.com").dispose()
    old, recent = outbox_rows(settings)
    with db.transaction(engine) as s:
        mark_failed(s, old.id, "550 mailbox unavailable", now - timedelta(days=2))
        mark_failed(s, recent.id, "550 mailbox full", now - timedelta(hours=1))
    engine.dispose()
    capsys.readouterr()
    assert cli.main(["outbox", "retry", "--all", "--kind", "notice"], settings=settings) == 0
    assert "(0 deliveries back in the queue)" in capsys.readouterr().out
    assert cli.main(["outbox", "retry", "--all"], settings=settings) == 0
    assert "(1 delivery back in the queue)" in capsys.readouterr().out
    assert [r.state for r in outbox_rows(settings)] == ["failed", "pending"]
    since = (now - timedelta(days=3)).isoformat()
    assert cli.main(["outbox", "retry", "--all", "--since", since], settings=settings) == 0
    assert [r.state for r in outbox_rows(settings)] == ["pending", "pending"]
    assert cli.main(["outbox", "retry", "--all", "--since", "yesterday"], settings=settings) == 2


def test_a_failure_keeps_its_first_time_and_a_success_clears_it(settings: Settings) -> None:
    """record_failure keeps failing_since at the first failure and the newest error; record_ok clears it."""
    from mailer.daemon import open_database

    t0 = SystemClock().now()
    engine = open_database(settings, FrozenClock(t0))
    with db.transaction(engine) as s:
        health.record_failure(s, "3514", "imap:inbox", "first", t0)
        health.record_failure(s, "3514", "imap:inbox", "second", t0 + timedelta(minutes=5))
    with db.reading(engine) as s:
        (row,) = health.connection_health(s)
        assert (row.failing_since, row.last_error, row.last_ok_at) == (t0, "second", None)
    with db.transaction(engine) as s:
        health.record_ok(s, "3514", "imap:inbox", t0 + timedelta(minutes=6))
    with db.reading(engine) as s:
        (row,) = health.connection_health(s)
        assert row.failing_since is None and row.last_ok_at == t0 + timedelta(minutes=6)
    engine.dispose()


def test_silent_threshold_below_the_idle_round_is_refused(tmp_path: Path) -> None:
    """status.mailbox_silent_after_s under daemon.idle_timeout_s + 60 stops the start naming the key."""
    path = write_settings(tmp_path, ("mailbox_silent_after_s = 1800", "mailbox_silent_after_s = 600"))
    with pytest.raises(ConfigError, match=r"status\.mailbox_silent_after_s.*at least .*660"):
        load_settings(path, environ=office_env(PASSWORD))


def test_a_mailbox_with_nothing_new_counts_as_a_working_session(settings: Settings) -> None:
    """A second pass over an INBOX whose mail the first pass read (UIDNEXT unmoved) notes it as working."""
    who = requester()
    deliver(make_mail(who)[0], who)
    once(settings)
    engine = db.make_engine(settings.database_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM connection_health")  # what the second pass notes, alone
    once(settings)
    with db.reading(engine) as s:
        worked = {(h.office_code, h.channel) for h in health.connection_health(s) if h.last_ok_at}
    engine.dispose()
    assert ("3514", "imap:inbox") in worked
