"""The operator's commands (`mailer status`, `mailer dead-letters`, `mailer outbox`) on databases
filled by the real pipeline, the dead letters and failed deliveries made by the real stack."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from mailer.clock import FrozenClock, SystemClock
from mailer.daemon import open_database
from mailer.delivery.render import Renderer
from mailer.model import FetchedMail
from mailer.pipeline import thread as thread_steps
from mailer.pipeline.driver import Pipeline
from mailer.settings import Settings
from storage import db
from storage.dead_letters import dead_letters
from storage.outbox import deliveries, mark_failed, mark_retry, suppress_outbox
from storage.tables import DeadLetter, MessageRow, OutboxRow, Ticket
from tests import mailstack
from tests.conftest import make_mail, one_pass, requester
from tests.test_end_to_end import deliver, run_once
from tests.test_staff import run_cli

OFFICE = "bps3514@bps.go.id"
# A mail saved by Windows Notepad (a byte-order mark before "From:") and put in the mailbox by a
# mail client: the parser finds no header block, a real dead letter.
WITH_BOM = b"\xef\xbb\xbf" + make_mail("rina.bom@example.com")[0]


def cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `mailer ARGS` on this test's database."""
    code = run_cli(tmp_path, monkeypatch, *args)
    out = capsys.readouterr()
    return code, out.out, out.err


def rows(settings: Settings, table: type) -> list[Any]:
    engine = db.make_engine(settings.database_url)
    with db.reading(engine) as s:
        found = list(s.execute(select(table)).scalars())
    engine.dispose()
    return found


def count(settings: Settings, table: type) -> int:
    engine = db.make_engine(settings.database_url)
    with db.reading(engine) as s:
        n = int(s.execute(select(func.count()).select_from(table)).scalar_one())
    engine.dispose()
    return n


def ingest(settings: Settings, clock: FrozenClock, sender: str) -> Engine:
    """One request through the real pipeline at `clock` (its acknowledgement queued, not sent)."""
    engine = open_database(settings, clock)
    pipe = Pipeline(settings, engine, Renderer(), clock)
    pipe.process(FetchedMail("3514", "INBOX", 7, 1, make_mail(sender)[0], clock.now()))
    return engine


# --- status --------------------------------------------------------------------------------


def test_status_of_a_quiet_desk_exits_0_and_shows_the_cursor(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A desk whose acknowledgement was just queued needs nobody: exit 0, the INBOX cursor
    (UIDVALIDITY, last UID, when it moved), the outbox and the open ticket are shown."""
    ingest(settings, FrozenClock(SystemClock().now()), "rina@example.com").dispose()
    code, out, _ = cli(tmp_path, monkeypatch, capsys, "status", "--office", "3514")
    assert code == 0
    assert "mailbox  INBOX          UIDVALIDITY 7 last UID 1, advanced " in out
    assert "outbox   pending 1; oldest waiting" in out
    assert "tickets  open 1 (overdue 0)" in out
    assert "OK: nothing needs attention" in out
    assert "3571" not in out  # --office: that office only


def test_status_and_outbox_list_count_suppressed_mail(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A delivery suppressed at send time (its recipient flagged since) is counted by `status`
    and listed by `outbox --state suppressed`, without needing attention."""
    engine = ingest(settings, FrozenClock(SystemClock().now()), "rina@example.com")
    with engine.begin() as conn:
        assert suppress_outbox(conn, 1, "rina@example.com is BOUNCING since …")
    engine.dispose()
    code, out, _ = cli(tmp_path, monkeypatch, capsys, "status", "--office", "3514")
    assert code == 0 and "outbox   suppressed 1" in out
    code, out, _ = cli(tmp_path, monkeypatch, capsys, "outbox", "--state", "suppressed")
    assert code == 0 and "rina@example.com" in out and "BOUNCING" in out


@pytest.mark.mailstack
@pytest.mark.usefixtures("office_mailboxes")
def test_status_tells_an_empty_folder_read_from_one_never_read(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a pass over an office whose INBOX and Sent folder are empty, `status` shows both by
    their real names with UIDVALIDITY and last UID 0, not "not read yet"."""
    one_pass(settings)
    code, out, _ = cli(tmp_path, monkeypatch, capsys, "status", "--office", "3514")
    assert code == 0
    assert "not read yet" not in out
    assert re.search(r"mailbox  INBOX +UIDVALIDITY \d+ last UID 0, advanced ", out)
    assert re.search(r"mailbox  Sent +UIDVALIDITY \d+ last UID 0, advanced ", out)


def test_status_exits_1_when_a_due_mail_is_not_sent(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An acknowledgement due for two hours and still not sent (no sender running) makes
    `status` exit 1, in text and in JSON."""
    ingest(settings, FrozenClock(SystemClock().now() - timedelta(hours=2)), "rina@example.com").dispose()
    code, out, _ = cli(tmp_path, monkeypatch, capsys, "status")
    assert code == 1
    assert "ATTENTION 3514: 1 mail(s) due for over 30 min and not sent" in out
    code, out, _ = cli(tmp_path, monkeypatch, capsys, "status", "--json")
    assert code == 1
    found = json.loads(out)
    (office,) = [o for o in found["offices"] if o["office"] == "3514"]
    assert found["ok"] is False
    assert office["late"] == 1 and office["outbox"]["pending"] == 1
    assert office["oldest_waiting_age_s"] >= 7200
    assert office["mailboxes"][0] == {
        "folder": "INBOX",
        "uidvalidity": 7,
        "last_uid": 1,
        "advanced_at": office["mailboxes"][0]["advanced_at"],
        "worked_at": None,  # ingested by hand: no daemon session noted
        "failing_since": None,
        "last_error": None,
    }


def test_status_of_an_unknown_office_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`status --office 9999` exits 2 and says the office is not in the settings."""
    code, _, err = cli(tmp_path, monkeypatch, capsys, "status", "--office", "9999")
    assert code == 2
    assert "no office 9999" in err


# --- dead letters ------------------------------------------------------------------------


def _real_dead_letter(settings: Settings) -> DeadLetter:
    """The BOM mail appended to the office INBOX and fetched: one dead letter (step parse)."""
    mailstack.append(OFFICE, WITH_BOM)
    run_once(settings)
    (dead,) = rows(settings, DeadLetter)
    return dead


@pytest.mark.mailstack
@pytest.mark.usefixtures("office_mailboxes")
def test_dead_letters_lists_a_real_dead_letter(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mail the parser refuses (BOM before the header) is listed: id, office, folder,
    UIDVALIDITY, UID, step, reason, size."""
    dead = _real_dead_letter(settings)
    code, out, _ = cli(tmp_path, monkeypatch, capsys, "dead-letters", "--office", "3514")
    assert code == 0
    line = next(x for x in out.splitlines() if x.strip().startswith(str(dead.id)))
    assert f"3514   INBOX/{dead.uidvalidity}/{dead.uid}" in line
    assert "parse" in line and "ParseError: parse: no header block" in line and str(len(dead.raw)) in line
    assert "(1 dead letter)" in out


@pytest.mark.mailstack
@pytest.mark.usefixtures("office_mailboxes")
def test_dead_letter_show_prints_the_reason_and_raw_gives_the_exact_bytes(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`dead-letters show ID` prints the step, reason and headers; with --raw the mail's bytes."""
    dead = _real_dead_letter(settings)
    code, out, _ = cli(tmp_path, monkeypatch, capsys, "dead-letters", "show", str(dead.id))
    assert code == 0
    assert "step parse" in out and "ParseError: parse: no header block" in out
    assert "Subject: Permohonan data jumlah penduduk miskin 2024" in out
    assert run_cli(tmp_path, monkeypatch, "dead-letters", "show", str(dead.id), "--raw") == 0
    assert capsys.readouterr().out == dead.raw.decode("utf-8")


@pytest.mark.mailstack
@pytest.mark.usefixtures("office_mailboxes")
def test_status_exits_1_while_a_dead_letter_is_not_resolved(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unresolved dead letter makes `status` exit 1 and say where to look."""
    _real_dead_letter(settings)
    code, out, _ = cli(tmp_path, monkeypatch, capsys, "status")
    assert code == 1
    assert "ATTENTION 3514: 1 dead letter(s) not resolved: mailer dead-letters --office 3514" in out


@pytest.mark.mailstack
@pytest.mark.usefixtures("office_mailboxes")
def test_retry_that_fails_again_keeps_the_dead_letter_with_the_reason(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A retry of a mail the pipeline still refuses exits 1; the dead letter stays unresolved,
    with the step and reason, its retries counted, and no ticket is made."""
    dead = _real_dead_letter(settings)
    code, out, _ = cli(tmp_path, monkeypatch, capsys, "dead-letters", "retry", str(dead.id))
    assert code == 1
    assert f"dead letter {dead.id}: failed: step parse: ParseError" in out
    (after,) = rows(settings, DeadLetter)
    assert after.resolved_at is None and after.retries == 1 and after.step == "parse"
    assert count(settings, Ticket) == 0


@pytest.mark.mailstack
@pytest.mark.usefixtures("office_mailboxes")
def test_dismissed_dead_letter_is_kept_and_no_longer_needs_attention(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`dead-letters dismiss ID --reason` marks it resolved with who and why, keeps its bytes,
    and `status` exits 0 again; a second dismiss exits 1 and changes nothing."""
    dead = _real_dead_letter(settings)
    code, out, _ = cli(
        tmp_path, monkeypatch, capsys, "dead-letters", "dismiss", str(dead.id), "--reason", "junk"
    )
    assert code == 0 and f"dead letter {dead.id}: dismissed by " in out
    (after,) = rows(settings, DeadLetter)
    assert after.resolved_at is not None and after.resolution.endswith(": junk")
    assert after.raw == dead.raw
    assert cli(tmp_path, monkeypatch, capsys, "status")[0] == 0
    code, out, _ = cli(
        tmp_path, monkeypatch, capsys, "dead-letters", "dismiss", str(dead.id), "--reason", "x"
    )
    assert code == 1 and "already resolved" in out
    assert rows(settings, DeadLetter)[0].resolution == after.resolution


def _dead_letter_by_a_bug(settings: Settings, monkeypatch: pytest.MonkeyPatch, who: str) -> DeadLetter:
    """A request fetched from the stack while the threader has a bug: kept as a dead letter."""

    def broken(*_args: object) -> None:
        raise RuntimeError("threader bug")

    deliver(make_mail(who)[0], who)
    with monkeypatch.context() as patch:
        patch.setattr(thread_steps, "find_ticket", broken)
        run_once(settings)
    (dead,) = rows(settings, DeadLetter)
    assert dead.step == "thread" and "threader bug" in dead.error
    return dead


@pytest.mark.mailstack
@pytest.mark.usefixtures("office_mailboxes")
def test_retry_after_the_fix_resolves_the_dead_letter_exactly_once(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Once the bug is fixed, `dead-letters retry ID` opens the ticket and queues its
    acknowledgement, keeps the dead letter marked resolved; a second retry changes nothing,
    and the requester gets exactly one acknowledgement."""
    who = requester()
    dead = _dead_letter_by_a_bug(settings, monkeypatch, who)
    code, out, err = cli(tmp_path, monkeypatch, capsys, "dead-letters", "retry", str(dead.id))
    assert code == 0
    assert f"dead letter {dead.id}: resolved: new ticket PST-3514-2026-00001, acknowledgement queued" in out
    (logged,) = [json.loads(x) for x in err.splitlines() if '"dead_letter_resolved"' in x]
    assert (logged["office"], logged["mailbox"], logged["uid"]) == ("3514", "INBOX", dead.uid)
    assert logged["ticket"] == "PST-3514-2026-00001" and logged["dead_letter"] == dead.id
    code, out, _ = cli(tmp_path, monkeypatch, capsys, "dead-letters", "retry", str(dead.id))
    assert code == 1 and "already resolved" in out
    (after,) = rows(settings, DeadLetter)
    assert after.resolved_at is not None and after.retries == 1
    (ticket,) = rows(settings, Ticket)
    assert ticket.received_at == dead.created_at  # the SLA counts from when it first came
    assert count(settings, OutboxRow) == 1
    code, out, _ = cli(tmp_path, monkeypatch, capsys, "dead-letters")
    assert "(0 dead letters)" in out
    code, out, _ = cli(tmp_path, monkeypatch, capsys, "dead-letters", "--all")
    assert "[resolved: new ticket PST-3514-2026-00001" in out
    run_once(settings)
    assert len(mailstack.wait_for(who, 1)) == 1
    assert len(mailstack.fetch_all(who)) == 1


@pytest.mark.mailstack
@pytest.mark.usefixtures("office_mailboxes")
def test_retry_of_a_mail_stored_meanwhile_adds_nothing(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A dead letter whose mail came again and was stored meanwhile is resolved by `retry --all`
    as a duplicate: still one ticket, one acknowledgement."""
    who = requester()
    dead = _dead_letter_by_a_bug(settings, monkeypatch, who)
    mailstack.append(OFFICE, dead.raw)  # the same mail again, another UID
    run_once(settings)
    assert count(settings, Ticket) == 1
    code, out, _ = cli(tmp_path, monkeypatch, capsys, "dead-letters", "retry", "--all")
    assert code == 0
    assert "resolved: already stored on PST-3514-2026-00001 (duplicate), nothing added" in out
    assert count(settings, Ticket) == 1
    assert count(settings, OutboxRow) == 1
    assert count(settings, MessageRow) == 2  # the request and its acknowledgement
    code, out, _ = cli(tmp_path, monkeypatch, capsys, "status", "--office", "3514")
    assert "dead     0 not resolved (1 resolved)" in out


# --- outbox ------------------------------------------------------------------------------


def _refused_and_sent(settings: Settings) -> tuple[OutboxRow, OutboxRow]:
    """Two requests fetched and acknowledged: Postfix refuses one acknowledgement with 550
    (failed), delivers the other (sent). Returns (failed row, sent row)."""
    good = requester()
    for sender in ("refused@fault.example", good):
        deliver(make_mail(sender)[0], sender, expect=0)
    mailstack.wait_for(OFFICE, 2)
    run_once(settings)
    by_to = {r.envelope_to: r for r in rows(settings, OutboxRow)}
    failed, sent = by_to["refused@fault.example"], by_to[good]
    assert failed.state == "failed" and sent.state == "sent"
    return failed, sent


@pytest.mark.mailstack
@pytest.mark.usefixtures("office_mailboxes")
def test_failed_delivery_is_listed_and_makes_status_exit_1(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`outbox --state failed` lists the refused acknowledgement with its ticket, kind and the
    server's 550; `status` exits 1 for a delivery failed within the day."""
    failed, _ = _refused_and_sent(settings)
    code, out, _ = cli(tmp_path, monkeypatch, capsys, "outbox", "--state", "failed")
    assert code == 0
    (line,) = [x for x in out.splitlines() if x.strip().startswith(str(failed.id))]
    assert "PST-3514-2026-0000" in line and " ack " in line and " failed " in line
    assert "refused@fault.example / 550" in line
    assert "(1 delivery)" in out
    code, out, _ = cli(tmp_path, monkeypatch, capsys, "status")
    assert code == 1 and "ATTENTION 3514: 1 delivery(ies) failed in the last 24 h" in out


@pytest.mark.mailstack
@pytest.mark.usefixtures("office_mailboxes")
def test_outbox_retry_puts_a_failed_delivery_back_and_it_is_attempted_again(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`outbox retry ID` makes a failed delivery pending (logged with office, ticket and who);
    `status` is clear again; the next pass attempts it once more (the address still refuses)."""
    failed, _ = _refused_and_sent(settings)
    code, out, err = cli(tmp_path, monkeypatch, capsys, "outbox", "retry", str(failed.id))
    assert code == 0 and "is pending again" in out
    (logged,) = [json.loads(x) for x in err.splitlines() if '"delivery_released"' in x]
    assert logged["office"] == "3514" and logged["outbox_id"] == failed.id
    assert str(logged["ticket"]).startswith("PST-3514-2026-") and logged["by"]
    again = {r.id: r for r in rows(settings, OutboxRow)}[failed.id]
    assert again.state == "pending" and again.attempts == 0 and again.failed_at is None
    assert cli(tmp_path, monkeypatch, capsys, "status")[0] == 0  # due now, not late
    run_once(settings)
    after = {r.id: r for r in rows(settings, OutboxRow)}[failed.id]
    assert after.state == "failed" and after.attempts == 1
    assert after.last_error.startswith("550") and after.failed_at is not None


@pytest.mark.mailstack
@pytest.mark.usefixtures("office_mailboxes")
def test_outbox_retry_refuses_a_sent_delivery(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`outbox retry` of a mail already sent exits 1 and changes nothing: it would be a duplicate."""
    _, sent = _refused_and_sent(settings)
    code, out, _ = cli(tmp_path, monkeypatch, capsys, "outbox", "retry", str(sent.id))
    assert code == 1 and "sending it again would be a duplicate" in out
    after = {r.id: r for r in rows(settings, OutboxRow)}[sent.id]
    assert after.state == "sent" and after.attempts == 1


def test_status_lists_and_retry_on_postgresql(
    postgres: Settings, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL: the status counts, the dead-letter and outbox lists (size of the bytes, a
    deferred delivery), a retry that fails again, one that resolves, a failed delivery released."""
    from mailer.operator import repair, status

    def broken(*_args: object) -> None:
        raise RuntimeError("threader bug")

    engine = open_database(postgres, clock)
    try:
        pipe = Pipeline(postgres, engine, Renderer(), clock)
        pipe.process(FetchedMail("3514", "INBOX", 7, 1, WITH_BOM, clock.now()))
        pipe.process(FetchedMail("3514", "INBOX", 7, 2, make_mail("rina@example.com")[0], clock.now()))
        with monkeypatch.context() as patch:
            patch.setattr(thread_steps, "find_ticket", broken)
            pipe.process(FetchedMail("3514", "INBOX", 7, 3, make_mail("dewi@example.com")[0], clock.now()))
        with db.transaction(engine) as s:
            (ack,) = deliveries(s, "3514")
            mark_retry(s, ack.id, "450 try later", clock.now() + timedelta(minutes=5))
        with db.reading(engine) as s:
            (found,) = status.collect(s, postgres, clock.now(), "3514")
            bom, bug = dead_letters(s)
            (deferred,) = deliveries(s, state="deferred")
        assert found.dead_letters == 2 and found.outbox == {"deferred": 1} and found.late == 0
        assert found.mailboxes[0].last_uid == 3 and found.tickets == {"open": 1}
        assert bom.size == len(WITH_BOM) and bom.step == "parse" and bug.step == "thread"
        assert deferred.last_error == "450 try later" and deferred.ticket_ref == "PST-3514-2026-00001"
        assert repair.retry_dead_letter(postgres, engine, clock, bom.id).result == "failed"
        assert repair.retry_dead_letter(postgres, engine, clock, bug.id).result == "resolved"
        with db.transaction(engine) as s:
            mark_failed(s, ack.id, "550 no such user", clock.now())
        assert repair.retry_delivery(engine, clock, ack.id)[0] is True
        with db.reading(engine) as s:
            (found,) = status.collect(s, postgres, clock.now(), "3514")
            (still,) = dead_letters(s)
        assert found.dead_letters == 1 and found.dead_letters_resolved == 1
        assert still.id == bom.id and still.retries == 1
        assert found.tickets == {"open": 2} and found.outbox == {"pending": 2}
    finally:
        engine.dispose()


def test_tickets_list_shows_office_local_times_and_marks_late_open_tickets(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`mailer tickets` prints received and due in the office's own zone (WIB for Pasuruan) and
    marks an open ticket past its deadline with "!" and a legend."""
    arrived = SystemClock().now().replace(microsecond=0) - timedelta(days=10)
    ingest(settings, FrozenClock(arrived), "rina@example.com").dispose()
    code, out, _ = cli(tmp_path, monkeypatch, capsys, "tickets")
    assert code == 0
    local = arrived.astimezone(settings.office("3514").tz)
    (line,) = [row for row in out.splitlines() if row.startswith("PST-3514-")]
    assert f"{local:%Y-%m-%d %H:%M} WIB" in line
    assert "WIB!" in line
    assert "!: open past its deadline" in out
