"""The Prometheus endpoint of `mailer run` (issue 15, item 4): the daemon's counters after a
real pass over the loopback stack, the desk's state read from the database at each scrape, a
port already taken, the `[metrics] listen` setting; and the systemd units systemd accepts."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import shutil
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from mailer.clock import FrozenClock, SystemClock
from mailer.daemon import Daemon, open_database
from mailer.errors import ConfigError
from mailer.operator import exporter
from mailer.settings import MetricsSettings, Settings, load_settings
from storage import db, health
from tests.conftest import ROOT, make_mail, office_env, requester
from tests.test_end_to_end import deliver
from tests.test_operator import ingest
from tests.test_settings import PASSWORD, write_settings

UNITS = ROOT / "scripts" / "systemd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(settings: Settings) -> Iterator[tuple[Settings, str]]:
    """The settings with metrics on a free loopback port, the endpoint started; its URL."""
    port = free_port()
    settings = dataclasses.replace(settings, metrics=MetricsSettings("127.0.0.1", port))
    open_database(settings, SystemClock()).dispose()
    found = exporter.serve(settings, SystemClock())
    assert found is not None
    yield settings, f"http://127.0.0.1:{port}/metrics"
    found.close()


def scrape(url: str) -> dict[str, float]:
    """{'name{labels}': value} of every sample the endpoint serves."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def test_scrape_reads_the_desks_state_from_the_database(served: tuple[Settings, str]) -> None:
    """An acknowledgement waiting two hours shows as a pending ack with its age; a mailbox that
    failed shows down and the office's reasons for attention are counted."""
    settings, url = served
    ingest(settings, FrozenClock(SystemClock().now() - timedelta(hours=2)), "rina@example.com").dispose()
    engine = db.make_engine(settings.database_url)
    with db.transaction(engine) as s:
        health.record_failure(s, "3571", "imap:inbox", "login refused for bps3571", SystemClock().now())
    engine.dispose()
    found = scrape(url)
    assert found['pst_outbox_mails{kind="ack",office="3514",state="pending"}'] == 1
    assert found['pst_outbox_oldest_waiting_seconds{office="3514"}'] >= 7200
    assert found['pst_tickets{office="3514",state="open"}'] == 1
    assert found['pst_mailbox_up{mailbox="INBOX",office="3571"}'] == 0
    assert found['pst_attention{office="3514"}'] == 1  # the late acknowledgement
    assert found['pst_dead_letters{office="3514",resolved="false"}'] == 0


@pytest.mark.mailstack
@pytest.mark.usefixtures("office_mailboxes")
def test_a_real_pass_moves_the_daemons_counters(served: tuple[Settings, str]) -> None:
    """After one pass over a request delivered through Postfix: one more mail fetched as a new
    ticket, one more ticket opened, one more delivery sent, one more sweep timed; the mailbox up."""
    settings, url = served
    keys = (
        'pst_mails_fetched_total{office="3514",outcome="ticket_created",role="inbox"}',
        'pst_tickets_opened_total{office="3514"}',
        'pst_deliveries_total{office="3514",result="sent"}',
        "pst_sweep_duration_seconds_count",
    )
    before = scrape(url)
    who = requester()
    deliver(make_mail(who)[0], who)
    daemon = Daemon(settings)
    try:
        asyncio.run(daemon.run_once())
    finally:
        daemon.close()
    after = scrape(url)
    assert [after[k] - before.get(k, 0) for k in keys] == [1, 1, 1, 1]
    assert after['pst_mailbox_up{mailbox="INBOX",office="3514"}'] == 1
    assert after['pst_outbox_mails{kind="ack",office="3514",state="sent"}'] == 1


def test_a_port_already_taken_leaves_the_daemon_running_without_metrics(
    settings: Settings, events: list[dict[str, object]]
) -> None:
    """serve() on a port another process holds returns None and logs metrics_not_served."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = dataclasses.replace(settings, metrics=MetricsSettings("127.0.0.1", port))
        assert exporter.serve(settings, SystemClock()) is None
    assert [e for e in events if e["event"] == "metrics_not_served"]


@pytest.mark.parametrize("listen", ["9464", "127.0.0.1:", "127.0.0.1:70000", ":9464", "localhost:http"])
def test_a_wrong_metrics_address_stops_the_start(tmp_path: Path, listen: str) -> None:
    """[metrics] listen must be host:port (or ""): the error names the key and the value."""
    path = write_settings(tmp_path, ('listen = "127.0.0.1:9464"', f'listen = "{listen}"'))
    with pytest.raises(ConfigError, match=r"metrics\.listen.*host:port"):
        load_settings(path, environ=office_env(PASSWORD))


def test_shipped_metrics_listen_on_loopback_only() -> None:
    """As shipped the endpoint is on 127.0.0.1, never on every interface."""
    shipped = load_settings(ROOT / "settings.toml", environ=office_env(PASSWORD))
    assert (shipped.metrics.host, shipped.metrics.port) == ("127.0.0.1", 9464)


# --- systemd ------------------------------------------------------------------------------


def _verify(units: Path) -> subprocess.CompletedProcess[str]:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze missing: scripts/setup.sh installs systemd"
    return subprocess.run(
        [analyze, "verify", *sorted(str(p) for p in units.iterdir())], capture_output=True, text=True
    )


def _copy_units(tmp_path: Path) -> Path:
    """The units with ExecStart pointing at this checkout's mailer (verify wants it to exist)."""
    out = tmp_path / "units"
    out.mkdir()
    mailer = ROOT / ".venv" / "bin" / "mailer"
    for unit in UNITS.iterdir():
        (out / unit.name).write_text(
            unit.read_text().replace("/opt/pst-mailer/.venv/bin/mailer", str(mailer))
        )
    return out


def test_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """The daemon's unit, the status service and its timer are accepted by `systemd-analyze verify`."""
    checked = _verify(_copy_units(tmp_path))
    assert checked.returncode == 0 and checked.stderr.strip() == "", checked.stderr


def test_systemd_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a unit with an unknown value is refused."""
    units = _copy_units(tmp_path)
    unit = units / "pst-mailer.service"
    unit.write_text(unit.read_text().replace("Type=exec", "Type=sometimes"))
    assert _verify(units).stderr.strip() != ""


def test_daemon_unit_is_sandboxed_and_sized_for_many_mailboxes() -> None:
    """Its own user, network-online, no new privileges, a read-only system, and open files for
    a province's mailboxes (at least 8192); the status timer runs the status service."""
    unit = (UNITS / "pst-mailer.service").read_text()
    for line in (
        "User=pst-mailer",
        "Wants=network-online.target",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
    ):
        assert re.search(rf"^{re.escape(line)}$", unit, re.MULTILINE), line
    limit = re.search(r"^LimitNOFILE=(\d+)$", unit, re.MULTILINE)
    assert limit and int(limit[1]) >= 8192
    assert "ExecStart=/opt/pst-mailer/.venv/bin/mailer run" in unit
    assert (
        "ExecStart=/opt/pst-mailer/.venv/bin/mailer status"
        in (UNITS / "pst-mailer-status.service").read_text()
    )
    assert "OnCalendar=*:0/15" in (UNITS / "pst-mailer-status.timer").read_text()
