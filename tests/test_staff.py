"""Staff answers and officer commands: who counts as staff, what their mail does to a ticket, and
what a requester's mail after an answer does. On a real SQLite database, without mail servers."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog
from sqlalchemy import Engine, select

from mailer.clock import FrozenClock
from mailer.daemon import open_database
from mailer.decide import staff
from mailer.delivery.render import Renderer
from mailer.intake.parse import parse
from mailer.model import Address, FetchedMail, Outcome, ParsedMail, Role
from mailer.operator import cli
from mailer.pipeline.driver import Pipeline
from mailer.settings import Settings, StaffSettings, load_settings
from storage import db, messages, tickets
from storage.tables import MessageRow, OutboxRow, Ticket, TicketEvent
from tests.conftest import ROOT, make_mail, office_env

_uids = itertools.count(1)
OFFICE = "bps3514@bps.go.id"
OFFICER = "dewi.pst@bps.go.id"
RINA = "rina@example.com"
OWN = frozenset({OFFICE, "bps3571@bps.go.id"})


@pytest.fixture
def pipe(settings: Settings, engine: Engine, clock: FrozenClock) -> Pipeline:
    return Pipeline(settings, engine, Renderer(), clock)


def fetched(raw: bytes, role: Role = Role.INBOX, at: datetime | None = None) -> FetchedMail:
    folder = "INBOX" if role is Role.INBOX else "Sent"
    return FetchedMail("3514", folder, 7, next(_uids), raw, at, role)


def ticket(engine: Engine) -> Ticket:
    with db.reading(engine) as s:
        (found,) = tickets.list_tickets(s)
        s.expunge(found)
        return found


def history(engine: Engine) -> list[str]:
    with db.reading(engine) as s:
        return [e.event for e in s.execute(select(TicketEvent).order_by(TicketEvent.id)).scalars()]


def request(pipe: Pipeline) -> str:
    """Rina's request, stored; returns its Message-ID."""
    raw, mid = make_mail(RINA)
    assert pipe.process(fetched(raw)) is Outcome.TICKET_CREATED
    return mid


def reply_to(mid: str) -> tuple[tuple[str, str], ...]:
    return (("In-Reply-To", f"<{mid}>"), ("References", f"<{mid}>"))


def answer(pipe: Pipeline, mid: str, to: str = RINA, cc: str = OFFICE, body: str = "Data terlampir.") -> str:
    """An officer's answer to Rina with the office in Cc, arrived in the office INBOX."""
    headers = (*reply_to(mid), ("Cc", cc)) if cc else reply_to(mid)
    raw, answer_mid = make_mail(
        OFFICER, to=to, subject="Re: Permohonan data", body=body, name="Dewi", headers=headers
    )
    clock = pipe.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(timedelta(hours=2))  # 11:00 WIB, two hours after the request
    assert pipe.process(fetched(raw, at=clock.now())) is Outcome.FOLLOWUP
    return answer_mid


# --- who is staff ---------------------------------------------------------------------------


def test_staff_domain_covers_subdomains_not_lookalikes() -> None:
    """staff.domains takes the domain and its subdomains, not a domain that merely ends alike."""
    policy = StaffSettings(domains=("bps.go.id",))
    assert policy.knows("dewi@bps.go.id") and policy.knows("dewi@jatim.bps.go.id")
    assert not policy.knows("dewi@fakebps.go.id")


def test_staff_address_answer_to_requester_stops_the_clock(pipe: Pipeline, engine: Engine) -> None:
    """An officer's reply to the requester with the office in Cc joins the ticket as the answer:
    state answered, first response time and officer recorded."""
    answer(pipe, request(pipe))
    t = ticket(engine)
    assert (t.state, t.resolution, t.first_response_by) == ("answered", "answered", OFFICER)
    assert t.first_response_at == datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
    assert history(engine) == ["answered"]


def test_second_answer_keeps_first_response(pipe: Pipeline, engine: Engine, clock: FrozenClock) -> None:
    """Only the first answer sets the first-response time; later ones only note the officer."""
    mid = request(pipe)
    answer(pipe, mid)
    raw, _ = make_mail(
        "budi.pst@bps.go.id", to=RINA, subject="Re: Permohonan data", headers=(*reply_to(mid), ("Cc", OFFICE))
    )
    clock.advance(timedelta(days=1))
    pipe.process(fetched(raw, at=clock.now()))
    t = ticket(engine)
    assert (t.first_response_by, t.last_officer) == (OFFICER, "budi.pst@bps.go.id")
    assert t.first_response_at == datetime(2026, 11, 23, 4, 0, tzinfo=UTC)


def test_staff_mail_gets_no_acknowledgement(pipe: Pipeline, engine: Engine) -> None:
    """An officer's answer queues nothing: only the first request was acknowledged."""
    answer(pipe, request(pipe))
    with db.reading(engine) as s:
        assert len(s.execute(select(OutboxRow)).all()) == 1


def test_sent_folder_mail_is_an_answer(pipe: Pipeline, engine: Engine) -> None:
    """A mail found in the office account's Sent folder, replying to the request, is the answer."""
    mid = request(pipe)
    raw, _ = make_mail(OFFICE, to=RINA, subject="Re: Permohonan data", name="PST BPS", headers=reply_to(mid))
    assert pipe.process(fetched(raw, Role.SENT)) is Outcome.FOLLOWUP
    t = ticket(engine)
    assert (t.state, t.first_response_by) == ("answered", OFFICE)
    with db.reading(engine) as s:
        kinds = [
            (m.kind, m.direction) for m in s.execute(select(MessageRow).order_by(MessageRow.id)).scalars()
        ]
    assert ("staff_answer", "out") in kinds


def test_sent_folder_mail_of_no_ticket_opens_nothing(pipe: Pipeline, engine: Engine) -> None:
    """Other mail the office sent (not about a ticket) is recorded, but opens no ticket."""
    raw, _ = make_mail(OFFICE, to="dinas@example.go.id", subject="Undangan rapat", name="PST BPS")
    assert pipe.process(fetched(raw, Role.SENT)) is Outcome.RECORDED
    with db.reading(engine) as s:
        assert tickets.list_tickets(s) == []


def test_staff_address_with_new_question_is_a_request(pipe: Pipeline, engine: Engine) -> None:
    """A colleague at a staff domain writing about something new is a requester like anyone."""
    raw, _ = make_mail("andi@bps.go.id", subject="Minta data IPM 2024")
    assert pipe.process(fetched(raw)) is Outcome.TICKET_CREATED
    assert ticket(engine).requester_email == "andi@bps.go.id"


# --- authentication --------------------------------------------------------------------------

AUTHSERV = "mx.bps.go.id"


def strict(settings: Settings) -> Settings:
    """The settings with office 3514 requiring authenticated staff mail."""
    policy = StaffSettings(domains=("bps.go.id",), require_authentication=True, authserv_ids=(AUTHSERV,))
    offices = tuple(dataclasses.replace(o, staff=policy) if o.code == "3514" else o for o in settings.offices)
    return dataclasses.replace(settings, offices=offices)


@pytest.mark.parametrize(
    ("results", "passes"),
    [
        (f"{AUTHSERV}; dmarc=pass (p=quarantine) header.from=bps.go.id", True),
        (
            f"{AUTHSERV}; dkim=pass header.d=bps.go.id header.s=sel; spf=fail smtp.mailfrom=x@evil.example",
            True,
        ),
        (f"{AUTHSERV}; spf=pass smtp.mailfrom=dewi.pst@bps.go.id", True),
        (f"{AUTHSERV}; dkim=pass header.d=evil.example; spf=pass smtp.mailfrom=x@evil.example", False),
        (f"{AUTHSERV}; dmarc=fail header.from=bps.go.id", False),
        ("mx.evil.example; dmarc=pass header.from=bps.go.id", False),
        (None, False),
    ],
    ids=["dmarc-pass", "dkim-aligned", "spf-aligned", "unaligned", "dmarc-fail", "foreign-server", "none"],
)
def test_authentication_results_decide_staff(results: str | None, passes: bool) -> None:
    """Only the office server's own Authentication-Results, with DMARC or aligned DKIM/SPF
    passing for the sender's domain, make a staff From header count."""
    header = f"Authentication-Results: {results}\r\n" if results else ""
    raw = f"{header}From: Dewi <{OFFICER}>\r\nSubject: Re: data\r\n\r\nJawaban.\r\n".encode()
    policy = StaffSettings(domains=("bps.go.id",), require_authentication=True, authserv_ids=(AUTHSERV,))
    assert staff.authenticated(raw, OFFICER, policy)[0] is passes


def test_only_the_topmost_result_of_our_server_counts() -> None:
    """A forged pass lower down (added before our server) does not outvote our server's fail."""
    raw = (
        f"Authentication-Results: {AUTHSERV}; dmarc=fail header.from=bps.go.id\r\n"
        f"Authentication-Results: {AUTHSERV}; dmarc=pass header.from=bps.go.id\r\n"
        f"From: {OFFICER}\r\n\r\nx"
    ).encode()
    policy = StaffSettings(domains=("bps.go.id",), require_authentication=True, authserv_ids=(AUTHSERV,))
    assert staff.authenticated(raw, OFFICER, policy)[0] is False


def test_unverified_staff_mail_is_an_outside_mail(
    settings: Settings, engine: Engine, clock: FrozenClock, events: list[dict[str, object]]
) -> None:
    """With require_authentication, a staff From without a passing result does not answer the
    ticket; it is an outside mail, a stranger's to Rina's ticket (a new linked ticket), and the
    refusal is logged with the reason."""
    pipe = Pipeline(strict(settings), engine, Renderer(), clock)
    mid = request(pipe)
    raw, _ = make_mail(
        OFFICER, to=RINA, subject="Re: Permohonan data", headers=(*reply_to(mid), ("Cc", OFFICE))
    )
    assert pipe.process(fetched(raw)) is Outcome.TICKET_CREATED
    with db.reading(engine) as s:
        rinas, outside = sorted(tickets.list_tickets(s), key=lambda found: found.id or 0)
    assert (rinas.state, rinas.first_response_at, rinas.message_count) == ("open", None, 1)
    refused = [e for e in events if e["event"] == "staff_mail_not_taken"]
    assert refused and "not authenticated" in str(refused[0]["reason"])
    assert refused[0]["office"] == "3514" and refused[0]["ticket"] == outside.ref


def test_authenticated_staff_mail_answers(settings: Settings, engine: Engine, clock: FrozenClock) -> None:
    """With require_authentication, a DMARC pass from the office's server makes the answer count."""
    pipe = Pipeline(strict(settings), engine, Renderer(), clock)
    mid = request(pipe)
    raw, _ = make_mail(
        OFFICER,
        to=RINA,
        subject="Re: Permohonan data",
        headers=(*reply_to(mid), ("Cc", OFFICE)),
    )
    raw = f"Authentication-Results: {AUTHSERV}; dmarc=pass header.from=bps.go.id\r\n".encode() + raw
    pipe.process(fetched(raw))
    assert ticket(engine).state == "answered"


# --- commands --------------------------------------------------------------------------------


def command_mail(
    pipe: Pipeline, mid: str, text: str, subject: str = "Re: Permohonan data", to: str = OFFICE
) -> None:
    raw, _ = make_mail(OFFICER, to=to, subject=subject, body=text, headers=reply_to(mid))
    assert pipe.process(fetched(raw)) is Outcome.FOLLOWUP


@pytest.mark.parametrize(
    ("text", "state", "resolution"),
    [
        ("#selesai", "closed", "closed"),
        ("#tutup sudah dijawab lewat telepon", "closed", "closed"),
        ("#tunggu menunggu data dari provinsi", "waiting", ""),
        ("#spam", "answered", "spam"),
        ("#duplikat sama dengan PST-3514-2026-00001", "answered", "duplicate"),
        ("#terimakasih", "answered", "thanks"),
        ("#Terjawab", "answered", "answered"),
    ],
)
def test_command_word_moves_ticket(
    pipe: Pipeline, engine: Engine, text: str, state: str, resolution: str
) -> None:
    """A command word on the first line of a mail sent only to the office sets the ticket's state."""
    command_mail(pipe, request(pipe), f"{text}\r\n\r\nDewi")
    t = ticket(engine)
    assert (t.state, t.resolution, t.last_officer) == (state, resolution, OFFICER)
    assert t.first_response_at is None  # settling is not an answer the requester received


def test_command_in_subject_with_ref_in_body(pipe: Pipeline, engine: Engine) -> None:
    """A fresh mail to the office with the command in the subject and the ticket reference in the
    body finds the ticket by the reference."""
    request(pipe)
    raw, _ = make_mail(OFFICER, to=OFFICE, subject="#selesai", body="Tiket PST-3514-2026-00001 sudah beres.")
    assert pipe.process(fetched(raw)) is Outcome.FOLLOWUP
    assert ticket(engine).state == "closed"


def test_command_sent_to_requester_is_ignored(
    pipe: Pipeline, engine: Engine, events: list[dict[str, object]]
) -> None:
    """A command word in a mail that also went to the requester does nothing (they saw it): the
    mail counts as an answer and the ignored command is logged."""
    command_mail(pipe, request(pipe), "#selesai\r\nBerikut datanya.", to=f"{RINA}, {OFFICE}")
    assert (ticket(engine).state, ticket(engine).resolution) == ("answered", "answered")
    assert any("ignored" in str(e.get("reason")) for e in events if e["event"] == "staff_mail_not_taken")


def test_note_command_changes_nothing(pipe: Pipeline, engine: Engine) -> None:
    """#catatan is an internal note: the ticket stays open and the clock runs."""
    command_mail(pipe, request(pipe), "#catatan sudah saya teruskan ke bidang sosial")
    assert ticket(engine).state == "open"
    assert history(engine) == ["note"]


def test_unknown_hash_word_is_not_a_command() -> None:
    """Only the listed words are commands: "#2024" or "#data" in a subject are not."""
    mail = parse(f"From: {OFFICER}\r\nTo: {OFFICE}\r\nSubject: Data #2024 #data\r\n\r\nhalo\r\n".encode())
    assert staff.command(mail, OWN) == (None, "")


# --- the requester after an answer -----------------------------------------------------------


def test_requester_reply_after_answer_reopens_with_fresh_clock(
    pipe: Pipeline, engine: Engine, clock: FrozenClock
) -> None:
    """The requester asking more after the answer puts the ticket back to open, due again from
    this mail."""
    mid = request(pipe)
    answer_mid = answer(pipe, mid)
    first_due = ticket(engine).due_at
    clock.advance(timedelta(days=3))
    raw, _ = make_mail(
        RINA,
        subject="Re: Permohonan data",
        body="Apakah ada data tahun 2023 juga?",
        headers=reply_to(answer_mid),
    )
    pipe.process(fetched(raw, at=clock.now()))
    t = ticket(engine)
    assert (t.state, t.resolution) == ("open", "")
    assert t.due_at > first_due
    assert history(engine) == ["answered", "replied"]


@pytest.mark.parametrize(
    "text",
    ["Terima kasih banyak Pak 🙏", "Baik, terimakasih atas datanya.", "Thank you so much!", "makasih min"],
)
def test_pure_thank_you_keeps_answered(pipe: Pipeline, engine: Engine, text: str) -> None:
    """A thank-you after the answer is stored on the ticket but does not reopen it."""
    answer_mid = answer(pipe, request(pipe))
    raw, _ = make_mail(
        RINA, subject="Re: Permohonan data", body=f"{text}\r\n\r\nRina", headers=reply_to(answer_mid)
    )
    assert pipe.process(fetched(raw)) is Outcome.FOLLOWUP
    assert ticket(engine).state == "answered"
    assert history(engine) == ["answered", "thanked"]


@pytest.mark.parametrize(
    "text",
    [
        "Terima kasih, tapi datanya belum per kecamatan.",
        "Terima kasih. Apakah ada data 2023?",
        "Thanks, could you also send the 2022 table?",
    ],
)
def test_thanks_with_more_is_not_a_thank_you(text: str) -> None:
    """A thank-you that asks for more restarts the clock."""
    assert staff.is_thanks(text) is False


def test_requester_reply_while_waiting_resumes(pipe: Pipeline, engine: Engine) -> None:
    """A reply while the office waits for the requester (#tunggu) opens the ticket again."""
    mid = request(pipe)
    command_mail(pipe, mid, "#tunggu minta konfirmasi tahun")
    raw, _ = make_mail(RINA, subject="Re: Permohonan data", body="Tahun 2024 saja.", headers=reply_to(mid))
    pipe.process(fetched(raw))
    assert ticket(engine).state == "open"
    assert history(engine) == ["waiting", "resumed"]


def test_thanks_recognised_under_quoted_history() -> None:
    """The quoted answer below a thank-you does not hide that the requester only said thanks."""
    text = (
        "Terima kasih Bu.\r\n\r\nPada Sen, 23 Nov 2026 pukul 11.00 Dewi <dewi@bps.go.id> menulis:\r\n"
        "> Data terlampir. Apakah sudah cukup?\r\n"
    )
    assert staff.is_thanks(text) is True


def test_officer_formatting() -> None:
    """Log lines name the officer and how they were recognised."""
    assert staff.Officer("dewi@bps.go.id", "sent_folder").formatted() == "dewi@bps.go.id (sent_folder)"


def test_identify_ignores_other_offices_of_the_desk(settings: Settings) -> None:
    """Another office's address of this desk is not this office's staff."""
    office = settings.office("3514")
    mail = ParsedMail(message_id="x@y", subject="s", from_=Address("", "bps3571@bps.go.id"))
    assert staff.identify(mail, b"", office, Role.INBOX, OWN) == (None, "")


def test_plain_mail_to_office_in_thread_is_an_answer(pipe: Pipeline, engine: Engine) -> None:
    """An officer's mail without a command, sent to the office in the ticket's conversation,
    counts as the office's answer (the issue's case c)."""
    command_mail(pipe, request(pipe), "Sudah saya jawab lewat telepon, data dikirim via WA.")
    assert (ticket(engine).state, ticket(engine).first_response_by) == ("answered", OFFICER)


def run_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """`mailer --settings … ARGS` on the shipped settings with this test's database."""
    text = (ROOT / "settings.toml").read_text(encoding="utf-8")
    path = tmp_path / "settings.toml"
    path.write_text(text.replace('path = "var/pst-mailer.sqlite3"', f'path = "{tmp_path / "pst.sqlite3"}"'))
    for key, value in office_env().items():
        monkeypatch.setenv(key, value)
    old = structlog.get_config()
    try:
        return cli.main(["--settings", str(path), *args])
    finally:
        structlog.configure(**old)  # main() points logging at this test's captured stdout


def test_show_prints_answer_and_history(
    tmp_path: Path, pipe: Pipeline, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mailer show REF` tells staff who answered when, and the ticket's history."""
    answer(pipe, request(pipe))
    assert run_cli(tmp_path, monkeypatch, "show", "PST-3514-2026-00001") == 0
    out = capsys.readouterr().out
    assert f"answered  : 2026-11-23 11:00 WIB by {OFFICER}" in out
    assert f"answered  -> answered {OFFICER}" in out
    assert "-> staff_answer" in out


def test_waiting_time_does_not_count(pipe: Pipeline, engine: Engine, clock: FrozenClock) -> None:
    """A ticket waiting for the requester from 09:00 to 12:00 (Monday, WIB) is due three office
    hours later than before the wait."""
    mid = request(pipe)
    before = ticket(engine).due_at
    command_mail(pipe, mid, "#tunggu mohon konfirmasi tahun data")  # 09:00 WIB
    clock.advance(timedelta(hours=3))
    raw, _ = make_mail(RINA, subject="Re: Permohonan data", body="Tahun 2024 saja.", headers=reply_to(mid))
    pipe.process(fetched(raw, at=clock.now()))
    assert ticket(engine).due_at == before + timedelta(hours=3)


def test_sla_command_explains_the_deadline(
    tmp_path: Path, pipe: Pipeline, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mailer sla REF` prints the receipt, the counted working days and the due time."""
    request(pipe)
    assert run_cli(tmp_path, monkeypatch, "sla", "PST-3514-2026-00001") == 0
    out = capsys.readouterr().out
    assert "diterima           Senin, 23 November 2026 pukul 09.00 WIB" in out
    assert "hari kerja       Selasa, 24 November 2026" in out
    assert "tenggat            Rabu, 25 November 2026 pukul 09.00 WIB" in out


def test_reply_to_a_notice_is_not_the_answer(pipe: Pipeline, engine: Engine, clock: FrozenClock) -> None:
    """A head of office (a staff address) replying to an escalation notice, to the office only,
    is a note on the ticket: it does not mark the ticket answered."""
    request(pipe)
    t = ticket(engine)
    with db.transaction(engine) as s:
        messages.add_message(
            s,
            office_code="3514",
            ticket_id=t.id,
            direction="out",
            kind="notice",
            message_id="pst.notice1@bps.go.id",
            dedupe_key="out:pst.notice1@bps.go.id",
            subject=f"[Eskalasi] {t.ref}",
            stored_at=clock.now(),
            raw_sha256="0" * 64,
            raw=b"notice",
        )
    command_mail(pipe, "pst.notice1@bps.go.id", "Tolong segera dijawab, terima kasih.")
    assert ticket(engine).state == "open"
    assert history(engine) == ["note"]


@pytest.mark.parametrize("sender", [OFFICER, "bps3514@bps.go.id"])
def test_shipped_settings_refuse_forged_staff_commands(
    tmp_path: Path, clock: FrozenClock, sender: str
) -> None:
    """settings.toml as shipped: `#tutup` and `#spam` from an unauthenticated bps.go.id address
    (or the office's own) close or settle nothing, and a forged answer does not stop the clock
    (a stranger's mail citing Rina's: a new linked ticket, though it claims to be to her)."""
    shipped = load_settings(ROOT / "settings.toml", environ=office_env("pw"))
    assert all(o.staff.require_authentication and o.staff.authserv_ids for o in shipped.offices)
    shipped = dataclasses.replace(shipped, database_url=f"sqlite:///{tmp_path / 'pst.sqlite3'}")
    engine = open_database(shipped, clock)
    pipe = Pipeline(shipped, engine, Renderer(), clock)
    mid = request(pipe)
    ref = ticket(engine).ref
    for body in (f"#tutup {ref}", f"#spam {ref}"):
        raw, _ = make_mail(sender, to=OFFICE, subject=f"#tutup {ref}", body=body, headers=reply_to(mid))
        pipe.process(fetched(raw))
    forged, _ = make_mail(
        OFFICER, to=RINA, subject="Re: Permohonan data", headers=(*reply_to(mid), ("Cc", OFFICE))
    )
    pipe.process(fetched(forged))
    with db.reading(engine) as s:
        (t,) = [found for found in tickets.list_tickets(s) if found.ref == ref]
    assert (t.state, t.resolution, t.first_response_at, t.message_count) == ("open", "", None, 1)
    engine.dispose()
