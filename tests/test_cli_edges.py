"""The rough edges of the command line (issue 15, item 7): wrong values refused with the valid
ones, references taken as people type them, a closed pipe, local times in `outbox`, officers'
answers shown without the request they quote, and `check-config`'s placeholders and logins."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Engine

from mailer.clock import FrozenClock, SystemClock
from mailer.model import canonical_ref
from mailer.operator import probe
from mailer.pipeline.driver import Pipeline
from mailer.settings import Settings
from tests import mailstack
from tests.conftest import ROOT, office_env
from tests.test_operator import cli, ingest
from tests.test_staff import answer, pipe, request

__all__ = ["pipe"]  # the fixture, shared with test_staff


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("PST-3514-2026-00042", "PST-3514-2026-00042"),
        ("pst-3514-2026-00042", "PST-3514-2026-00042"),
        ("PST-3514-2026-42", "PST-3514-2026-00042"),
        (" Pst-3514-2026-0042 ", "PST-3514-2026-00042"),
        ("PST-3514-2026-123456", "PST-3514-2026-123456"),
        ("PST-3514-2026-", None),
        ("3514-2026-42", None),
        ("PST-351-2026-42", None),
        ("PST-3514-2026-42; rm -rf", None),
    ],
)
def test_a_reference_is_taken_in_any_case_and_without_its_zeros(typed: str, meant: str | None) -> None:
    """canonical_ref folds case, blanks around it and missing leading zeros; anything else is no reference."""
    assert canonical_ref(typed) == meant


def test_show_finds_a_ticket_typed_in_lower_case_without_zeros(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`mailer show pst-3514-2026-1` shows PST-3514-2026-00001, and `mailer sla` takes it too."""
    ingest(settings, FrozenClock(SystemClock().now()), "rina@example.com").dispose()
    capsys.readouterr()  # the pipeline's log lines
    code, out, _ = cli(tmp_path, monkeypatch, capsys, "show", "pst-3514-2026-1")
    assert code == 0 and out.startswith("PST-3514-2026-00001")
    code, out, _ = cli(tmp_path, monkeypatch, capsys, "sla", "PST-3514-2026-1")
    assert code == 0 and out.startswith("PST-3514-2026-00001")


def test_show_of_something_that_is_no_reference_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`mailer show 42` exits 2 and shows what a reference looks like."""
    code, _, err = cli(tmp_path, monkeypatch, capsys, "show", "42")
    assert code == 2 and "not a ticket reference (like PST-3514-2026-00042)" in err


def test_tickets_with_a_misspelt_state_exits_2_with_the_valid_states(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tickets --state opne` is refused (exit 2) naming open, answered, waiting, closed."""
    with pytest.raises(SystemExit) as stopped:
        cli(tmp_path, monkeypatch, capsys, "tickets", "--state", "opne")
    err = capsys.readouterr().err
    assert stopped.value.code == 2
    assert "'opne'" in err and all(state in err for state in ("open", "answered", "waiting", "closed"))


@pytest.mark.parametrize(
    "args",
    [
        ("tickets", "--office", "9999"),
        ("search", "inflasi", "--office", "9999"),
        ("outbox", "--office", "9999"),
        ("dead-letters", "--office", "9999"),
    ],
)
def test_an_unknown_office_exits_2_with_the_valid_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]
) -> None:
    """Every command with --office refuses an office the settings do not have and lists the valid codes."""
    code, out, err = cli(tmp_path, monkeypatch, capsys, *args)
    assert code == 2 and out == ""
    assert "no office 9999" in err and "3514" in err and "3571" in err


def test_report_for_an_unknown_province_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`report --province 9900` exits 2 naming the provinces of the settings."""
    code, _, err = cli(tmp_path, monkeypatch, capsys, "report", "--month", "2026-11", "--province", "9900")
    assert code == 2 and "no province 9900" in err and "3500" in err


def test_a_reader_that_leaves_early_gets_no_traceback(tmp_path: Path, settings: Settings) -> None:
    """`mailer tickets | head -0`: the closed pipe ends the command quietly with SIGPIPE's status 141."""
    config = tmp_path / "settings.toml"
    text = (ROOT / "settings.toml").read_text(encoding="utf-8")
    config.write_text(text.replace('path = "var/pst-mailer.sqlite3"', f'path = "{tmp_path / "pst.sqlite3"}"'))
    env = {**os.environ, **office_env()}
    child = subprocess.Popen(
        [sys.executable, "-m", "mailer", "--settings", str(config), "tickets"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # the reader is gone before the first line is written
    with child.stderr:
        err = child.stderr.read().decode()
    assert child.wait(timeout=60) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_outbox_shows_office_local_time_like_tickets(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`mailer outbox` prints when a delivery is due in the office's zone (WIB), as `tickets` does."""
    now = SystemClock().now().replace(second=0, microsecond=0)
    ingest(settings, FrozenClock(now), "rina@example.com").dispose()
    capsys.readouterr()  # the pipeline's log lines
    code, out, _ = cli(tmp_path, monkeypatch, capsys, "outbox")
    assert code == 0
    (line,) = [row for row in out.splitlines() if "PST-3514-" in row]
    assert f"{now.astimezone(settings.office('3514').tz):%Y-%m-%d %H:%M} WIB" in line
    assert "(local)" in out and "(UTC)" not in out


def test_show_prints_an_officers_answer_without_the_request_it_quotes(
    tmp_path: Path,
    pipe: Pipeline,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An answer that quotes the whole request is shown trimmed; `--full` shows the quote too."""
    quoted = (
        "Berikut datanya.\n\nPada 5 Des 2026, Rina menulis:\n> Mohon data inflasi Kota Batu\n> per bulan."
    )
    answer(pipe, request(pipe), body=quoted)
    capsys.readouterr()  # the pipeline's log lines
    code, out, _ = cli(tmp_path, monkeypatch, capsys, "show", "PST-3514-2026-00001")
    (shown,) = [part for part in out.split("\n<= ") + out.split("\n-> ") if "staff_answer" in part[:20]]
    assert code == 0 and "Berikut datanya." in shown and "> Mohon data inflasi" not in shown
    code, out, _ = cli(tmp_path, monkeypatch, capsys, "show", "PST-3514-2026-00001", "--full")
    assert "> Mohon data inflasi" in out


def test_check_config_warns_of_each_placeholder_with_its_key(tmp_path: Path) -> None:
    """The shipped file's invented head addresses are named, key and value; real values are not."""
    found = probe.placeholders(ROOT / "settings.toml")
    assert "offices.3514.head = 'placeholder.kepala3514@bps.go.id'" in found
    assert "national.head = 'placeholder.kepala.pst@bps.go.id'" in found
    assert not [line for line in found if line.startswith("offices.3514.email")]


@pytest.mark.parametrize(
    ("error", "tls", "meaning"),
    [
        (
            "TLS failed with h:143: [SSL: WRONG_VERSION_NUMBER] wrong version number",
            "imaps",
            "does not speak TLS",
        ),
        ("cannot connect to h:1: [Errno 111] Connection refused", "imaps", "nothing listens"),
        ("cannot connect to nosuch: [Errno -2] Name or service not known", "imaps", "no such host"),
        ("h:993: timed out", "starttls", 'expect TLS from the start (tls = "imaps")'),
        ("login refused for bps3514: Authentication failed.", "imaps", "password is refused"),
        (
            "TLS failed with h:993: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed",
            "imaps",
            "not trusted",
        ),
    ],
)
def test_a_failed_login_is_explained_in_the_settings_words(error: str, tls: str, meaning: str) -> None:
    """probe.explain turns the server's error into what to change, keeping the error itself."""
    said = probe.explain(error, tls, "imaps")
    assert meaning in said and error in said


@pytest.mark.mailstack
@pytest.mark.usefixtures("office_mailboxes")
def test_check_config_connect_logs_in_and_names_a_port_that_does_not_speak_tls(
    settings: Settings, stack: mailstack.Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    """--connect: the loopback servers log in OK; IMAPS pointed at the plain IMAP port is
    reported with "does not speak TLS" and the command exits 1."""
    from mailer.operator import cli_daemon

    assert cli_daemon.check_config(settings, connect=True) == 0
    out = capsys.readouterr().out
    assert "IMAP " in out and "SMTP " in out and "FAILED" not in out
    office = settings.office("3514")
    plain_port = replace(office.imap, tls="imaps", port=stack.imap_port)
    broken = replace(settings, offices=(replace(office, imap=plain_port),))
    assert cli_daemon.check_config(broken, connect=True) == 1
    out = capsys.readouterr().out
    assert "FAILED: this port does not speak TLS" in out and "1 server login failed" in out
