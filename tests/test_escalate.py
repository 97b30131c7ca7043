"""Reminders and escalation: the ladder's decisions (pure, by tables), holding a notice until its
recipient's working hours (WIB and WIT, weekends, holidays), and the sweep on SQLite: exactly once
per ticket and level across re-runs and restarts, nothing for paused or answered tickets."""

from __future__ import annotations

import dataclasses
import email
import itertools
from datetime import datetime
from email import policy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select

from mailer.clock import FrozenClock
from mailer.daemon import open_database
from mailer.decide import rules, sla
from mailer.delivery.render import Renderer
from mailer.errors import ConfigError
from mailer.intake.parse import parse
from mailer.model import FetchedMail, Outcome
from mailer.pipeline.driver import Pipeline
from mailer.settings import Settings, load_settings
from mailer.timed import escalate
from mailer.timed.sweep import Sweeper, SweepReport
from storage import db, tickets
from storage.tables import MessageRow, OutboxRow, TicketNotice
from storage.vocabulary import MessageKind, NoticeLevel, TicketState
from tests.conftest import make_mail, office_env, requester

WIB, WIT = ZoneInfo("Asia/Jakarta"), ZoneInfo("Asia/Jayapura")
_uids = itertools.count(1)


def at(day: str, hhmm: str, tz: ZoneInfo = WIB) -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=tz)


def reached(settings: Settings, code: str, received: datetime, now: datetime) -> set[str]:
    """The levels a ticket of `code` received at `received` has reached at `now` (whoever is at work)."""
    office = settings.office(code)
    due = sla.due_at(office, received)
    found = set()
    for level in NoticeLevel:
        rung = escalate.rung(settings, office, level, now)
        if rung is not None and due <= rung.cutoff and (rung.after is None or due > rung.after):
            found.add(level.label)
    return found


MON = at("2026-11-23", "10:00")  # due Wednesday 25 November 10:00 WIB
R, H, P, N = "reminder", "office_head", "province_head", "national"


@pytest.mark.parametrize(
    ("code", "received", "now", "levels"),
    [
        ("3514", MON, at("2026-11-23", "12:00"), set()),
        ("3514", MON, at("2026-11-24", "13:30"), set()),
        ("3514", MON, at("2026-11-24", "14:00"), {R}),  # 75% of 2 working days: Tuesday 13:45
        ("3514", MON, at("2026-11-25", "09:59"), {R}),
        ("3514", MON, at("2026-11-25", "10:00"), {H}),  # at the deadline; no reminder any more
        ("3514", MON, at("2026-11-26", "16:00"), {H}),
        ("3514", MON, at("2026-11-27", "11:00"), {H, P}),  # 2 working days after the deadline
        ("3514", MON, at("2026-12-01", "15:00"), {H, P}),
        ("3514", MON, at("2026-12-02", "11:00"), {H, P, N}),  # 5 working days after
        # Christmas: due Wed 23 Dec; 24 (cuti bersama), 25 and the weekend do not count.
        ("3514", at("2026-12-21", "10:00"), at("2026-12-28", "15:00"), {H}),
        ("3514", at("2026-12-21", "10:00"), at("2026-12-29", "11:00"), {H, P}),
        # Nyepi and Eid al-Fitr 2026 with joint leave (18-24 March): due Thu 26 March.
        ("3514", at("2026-03-17", "10:00"), at("2026-03-23", "10:00"), set()),
        ("3514", at("2026-03-17", "10:00"), at("2026-03-25", "14:00"), {R}),
        ("3514", at("2026-03-17", "10:00"), at("2026-03-26", "11:00"), {H}),
        # Halmahera Utara, WIT, 3 working days: due Thu 26 Nov 10:00 WIT; reminder Wed ~11:52 WIT.
        ("8205", at("2026-11-23", "10:00", WIT), at("2026-11-25", "11:30", WIT), set()),
        ("8205", at("2026-11-23", "10:00", WIT), at("2026-11-25", "12:00", WIT), {R}),
        ("8205", at("2026-11-23", "10:00", WIT), at("2026-11-26", "09:00", WIB), {H}),  # 11:00 WIT
    ],
)
def test_ladder_levels_reached(
    settings: Settings, code: str, received: datetime, now: datetime, levels: set[str]
) -> None:
    """Which notices a ticket has reached, counted in its office's working time."""
    assert reached(settings, code, received, now) == levels


@pytest.mark.parametrize(
    ("code", "level", "now", "working"),
    [
        ("3514", NoticeLevel.OFFICE_HEAD, at("2026-11-23", "07:59"), False),
        ("3514", NoticeLevel.OFFICE_HEAD, at("2026-11-23", "08:00"), True),
        ("3514", NoticeLevel.OFFICE_HEAD, at("2026-11-23", "15:29"), True),
        ("3514", NoticeLevel.OFFICE_HEAD, at("2026-11-23", "15:30"), False),  # Monday closes 15:30
        ("3514", NoticeLevel.OFFICE_HEAD, at("2026-11-27", "15:45"), True),  # Friday closes 16:00
        ("3514", NoticeLevel.OFFICE_HEAD, at("2026-11-23", "23:00"), False),
        ("3514", NoticeLevel.OFFICE_HEAD, at("2026-11-28", "10:00"), False),  # Saturday
        ("3514", NoticeLevel.OFFICE_HEAD, at("2026-12-24", "10:00"), False),  # Christmas joint leave
        ("3514", NoticeLevel.OFFICE_HEAD, at("2026-03-20", "10:00"), False),  # Eid al-Fitr joint leave
        ("3514", NoticeLevel.REMINDER, at("2026-11-28", "10:00"), False),
        ("8205", NoticeLevel.OFFICE_HEAD, at("2026-11-23", "08:00"), True),  # 10:00 WIT
        ("8205", NoticeLevel.OFFICE_HEAD, at("2026-11-23", "14:00"), False),  # 16:00 WIT: closed
        ("8205", NoticeLevel.PROVINCE_HEAD, at("2026-11-23", "14:00"), False),  # Maluku Utara: WIT
        ("8205", NoticeLevel.NATIONAL, at("2026-11-23", "14:00"), True),  # Jakarta: WIB
        ("8205", NoticeLevel.NATIONAL, at("2026-11-23", "07:00", WIT), False),  # 05:00 WIB
    ],
)
def test_notices_wait_for_the_recipients_working_hours(
    settings: Settings, code: str, level: int, now: datetime, working: bool
) -> None:
    """A notice may go only within its recipient's own hours, in their zone, on their working days."""
    person = escalate.recipient(settings, settings.office(code), level)
    assert person is not None
    assert escalate.at_work(person, now) is working


def test_plan_holds_the_wit_office_while_the_wib_one_works(settings: Settings) -> None:
    """At 15:00 WIB (17:00 WIT) Pasuruan's people get notices, Halmahera Utara's are held."""
    plan = escalate.plan(settings, at("2026-11-23", "15:00"))
    due = {(r.office.code, r.level) for rungs in plan.due.values() for r in rungs}
    held = {(r.office.code, r.level) for r in plan.held}
    assert ("3514", NoticeLevel.OFFICE_HEAD) in due
    assert ("8205", NoticeLevel.OFFICE_HEAD) in held and ("8205", NoticeLevel.PROVINCE_HEAD) in held
    assert ("8205", NoticeLevel.NATIONAL) in due


# --- the sweep on SQLite -----------------------------------------------------------------------


def open_ticket(settings: Settings, engine: Engine, code: str, received: datetime) -> str:
    """A new request to office `code` received at `received`; returns the ticket reference."""
    pipe = Pipeline(settings, engine, Renderer(), FrozenClock(received))
    raw, _ = make_mail(requester(), to=f"bps{code}@bps.go.id", date=received)
    assert pipe.process(FetchedMail(code, "INBOX", 1, next(_uids), raw, received_at=received)) is (
        Outcome.TICKET_CREATED
    )
    with db.reading(engine) as s:
        return tickets.list_tickets(s, office=code, limit=1)[0].ref


def notices(engine: Engine) -> list[tuple[str, int, str]]:
    """[(ticket ref, level, recipient)] of every notice, in order."""
    with db.reading(engine) as s:
        rows = s.execute(select(TicketNotice).order_by(TicketNotice.id)).scalars().all()  # type: ignore[arg-type]
        refs = {t.id: t.ref for t in tickets.list_tickets(s, limit=1000)}
    return [(refs[n.ticket_id], n.level, n.recipient) for n in rows]


def outbox_count(engine: Engine, kind: str) -> int:
    with db.reading(engine) as s:
        query = (
            select(func.count())
            .select_from(OutboxRow)
            .join(MessageRow, MessageRow.id == OutboxRow.message_pk)
        )
        return int(s.execute(query.where(MessageRow.kind == kind)).scalar_one())  # type: ignore[arg-type]


def sweep(settings: Settings, engine: Engine, now: datetime) -> None:
    Sweeper(settings, engine, Renderer(), FrozenClock(now)).run_once()


def test_each_level_once_across_sweeps_and_restarts(settings: Settings, engine: Engine) -> None:
    """Reminder, head, province and national each go once per ticket, however often the sweep
    runs and even from a new process on the same database."""
    ref = open_ticket(settings, engine, "3514", MON)
    for now in (at("2026-11-24", "14:00"), at("2026-11-25", "11:00"), at("2026-11-27", "11:00"),
                at("2026-12-02", "11:00")):  # fmt: skip
        sweep(settings, engine, now)
        sweep(settings, engine, now)
    restarted = open_database(settings, FrozenClock(at("2026-12-02", "11:30")))
    sweep(settings, restarted, at("2026-12-02", "11:30"))
    restarted.dispose()
    assert notices(engine) == [
        (ref, NoticeLevel.REMINDER, "bps3514@bps.go.id"),
        (ref, NoticeLevel.OFFICE_HEAD, "placeholder.kepala3514@bps.go.id"),
        (ref, NoticeLevel.PROVINCE_HEAD, "placeholder.kepala.pst3500@bps.go.id"),
        (ref, NoticeLevel.NATIONAL, "placeholder.kepala.pst@bps.go.id"),
    ]
    assert outbox_count(engine, "notice") == 4


def test_a_notice_due_at_night_waits_for_the_next_working_morning(settings: Settings, engine: Engine) -> None:
    """Past due in the evening: nothing then, nor at 07:59; the head's notice goes at 08:00."""
    open_ticket(settings, engine, "3514", MON)
    sweep(settings, engine, at("2026-11-25", "20:00"))
    sweep(settings, engine, at("2026-11-26", "07:59"))
    assert notices(engine) == []
    sweep(settings, engine, at("2026-11-26", "08:00"))
    assert [level for _, level, _ in notices(engine)] == [NoticeLevel.OFFICE_HEAD]


def test_notices_and_digests_wait_out_the_night_if_sending_slips(settings: Settings, engine: Engine) -> None:
    """A notice and a digest are queued with quiet_after = the time of the sweep: should their
    sending slip into the evening (the SMTP server away), the sender holds them until morning
    (quiet.py), as it does for a late acknowledgement."""
    open_ticket(settings, engine, "3514", MON)
    now = at("2026-11-26", "08:00")  # past due: the head's notice and the morning digests
    sweep(settings, engine, now)
    with db.reading(engine) as s:
        rows = s.execute(
            select(MessageRow.kind, OutboxRow.quiet_after)
            .join(MessageRow, MessageRow.id == OutboxRow.message_pk)
            .where(MessageRow.kind != MessageKind.ACK)
        ).all()
    assert {kind for kind, _ in rows} == {MessageKind.NOTICE, MessageKind.DIGEST}
    assert all(quiet_after == now for _, quiet_after in rows)


def test_weekend_and_holiday_hold_notices(settings: Settings, engine: Engine) -> None:
    """Due Wed 23 Dec: nothing on Christmas Eve (joint leave), Christmas or the weekend."""
    open_ticket(settings, engine, "3514", at("2026-12-21", "10:00"))
    for now in (at("2026-12-24", "10:00"), at("2026-12-25", "10:00"), at("2026-12-26", "10:00")):
        sweep(settings, engine, now)
    sweep(settings, engine, at("2026-12-23", "09:00"))  # the reminder, the day before (in hours)
    assert [level for _, level, _ in notices(engine)] == [NoticeLevel.REMINDER]


@pytest.mark.parametrize("state", [TicketState.WAITING, TicketState.ANSWERED, TicketState.CLOSED])
def test_paused_answered_and_closed_tickets_are_not_escalated(
    settings: Settings, engine: Engine, state: str
) -> None:
    """Only open tickets are reminded or escalated."""
    ref = open_ticket(settings, engine, "3514", MON)
    with db.transaction(engine) as s:
        found = tickets.ticket_by_ref(s, ref)
        assert found is not None
        tickets.change_ticket(s, found.id, state=state, at=MON)
    sweep(settings, engine, at("2026-12-02", "11:00"))
    assert notices(engine) == []


def test_tickets_reaching_a_level_together_make_one_mail(settings: Settings, engine: Engine) -> None:
    """Three tickets past due at once: the head gets one notice listing the three."""
    refs = {open_ticket(settings, engine, "3514", MON) for _ in range(3)}
    sweep(settings, engine, at("2026-11-25", "11:00"))
    assert {ref for ref, _, _ in notices(engine)} == refs
    assert outbox_count(engine, "notice") == 1


def test_notice_is_automatic_and_recognised_as_our_own(settings: Settings, engine: Engine) -> None:
    """A notice says it is automatic; back in an office INBOX, the rules file it as our own mail."""
    ref = open_ticket(settings, engine, "3514", MON)
    sweep(settings, engine, at("2026-11-24", "14:00"))
    with db.reading(engine) as s:
        raw = s.execute(select(MessageRow.raw).where(MessageRow.kind == MessageKind.NOTICE)).scalar_one()  # type: ignore[arg-type]
    mail = email.message_from_bytes(raw, policy=policy.default)
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["X-PST-Notice"] == "reminder" and mail["X-PST-Ticket"] == ref
    assert mail["To"].addresses[0].addr_spec == "bps3514@bps.go.id"
    assert ref in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    decision = rules.decide(parse(raw), {o.email for o in settings.offices})
    assert decision.kind is MessageKind.OWN


def test_escalation_can_be_switched_off(settings: Settings, engine: Engine) -> None:
    """escalation.enabled = false: no reminder and no notice."""
    off = dataclasses.replace(settings, escalation=dataclasses.replace(settings.escalation, enabled=False))
    open_ticket(off, engine, "3514", MON)
    sweep(off, engine, at("2026-12-02", "11:00"))
    assert notices(engine) == []


# --- settings ------------------------------------------------------------------------------------


def test_shipped_escalation_settings(settings: Settings) -> None:
    """settings.toml names a head per office, a PST head per province, the national level, the
    reminder share, the level delays and the digest time."""
    assert all(o.head.endswith("@bps.go.id") for o in settings.offices)
    assert all(p.head and p.hours is not None for p in settings.provinces.values())
    assert settings.provinces["8200"].time_zone == "Asia/Jayapura"
    assert settings.national is not None and settings.national.time_zone == "Asia/Jakarta"
    e = settings.escalation
    assert (e.remind_at_share, e.level2_after_working_days, e.level3_after_working_days) == (0.75, 2, 5)
    assert (settings.digest.local_time, settings.digest.send_empty) == ("08:00", False)


@pytest.mark.parametrize(
    ("edit", "key", "reason"),
    [
        (
            ("remind_at_share = 0.75", "remind_at_share = 1.5"),
            "escalation.remind_at_share",
            "must be below 1",
        ),
        (("remind_at_share = 0.75", "remind_at_share = 0"), "escalation.remind_at_share", "greater than 0"),
        (
            ("level3_after_working_days = 5", "level3_after_working_days = 2"),
            "escalation.level3_after_working_days",
            "must be more than level2_after_working_days (2)",
        ),
        (('local_time = "08:00"', 'local_time = "8am"'), "digest.local_time", 'must look like "07:30"'),
        (
            ('head = "placeholder.kepala3514@bps.go.id"', 'head = "kepala pasuruan"'),
            "offices.3514.head",
            "not an email address",
        ),
        (
            (
                'head = "placeholder.kepala.pst8200@bps.go.id"\ntime_zone = "Asia/Jayapura"',
                'head = "placeholder.kepala.pst8200@bps.go.id"',
            ),
            "provinces.8200.time_zone",
            "missing",
        ),
        (("sweep_interval_s = 60", "sweep_intervall_s = 60"), "escalation.sweep_intervall_s", "unknown key"),
    ],
)
def test_wrong_escalation_setting_names_file_key_reason(
    tmp_path: Path, edit: tuple[str, str], key: str, reason: str
) -> None:
    """A wrong escalation or digest setting stops the start with the file, the key and the reason."""
    from tests.test_settings import write_settings

    path = write_settings(tmp_path, edit)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ=office_env())
    assert caught.value.key == key and reason in caught.value.reason


def test_sweep_summary_says_what_waits_for_working_hours() -> None:
    """The one-line sweep summary (printed by `mailer once`) names held rungs as waiting for
    working hours, and says nothing of them when none are held."""
    report = SweepReport(digests=1, held=3)
    report.notices["level 1"] = 2
    assert report.summary() == "level 1 2; digests 1 (empty 0); 3 office/level rungs wait for working hours"
    assert SweepReport().summary() == "no notices; digests 0 (empty 0)"
