"""The clock after a wait (#tunggu): where the office's standard counts "setelah permintaan jelas"
(`[offices.X.sla] after_wait = "restart"`: Tulang Bawang, Halmahera Utara), the requester's
clarification starts a full new period, counted from its receipt like a new mail; elsewhere
(`"pause"`) the deadline moves by the office time spent waiting. Through the pipeline on a real
SQLite database, and the pure decision as a table."""

from __future__ import annotations

import itertools
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from mailer.clock import FrozenClock
from mailer.decide import lifecycle
from mailer.delivery.render import Renderer
from mailer.model import FetchedMail, Outcome
from mailer.pipeline.driver import Pipeline
from mailer.settings import AfterWait, Settings
from storage import db, tickets
from storage.tables import Ticket
from storage.vocabulary import Resolution, TicketState
from tests.conftest import make_mail

_uids = itertools.count(1)
WIB, WIT = ZoneInfo("Asia/Jakarta"), ZoneInfo("Asia/Jayapura")
RINA = "rina@example.com"
OFFICER = "dewi.pst@bps.go.id"


def at(day: int, hour: int, minute: int = 0, tz: ZoneInfo = WIB) -> datetime:
    """A moment of November/December 2026 (day > 30: December) in the office's zone."""
    month, day = (12, day - 30) if day > 30 else (11, day)
    return datetime(2026, month, day, hour, minute, tzinfo=tz)


def deliver(
    pipe: Pipeline, clock: FrozenClock, code: str, raw: bytes, when: datetime, read: datetime | None = None
) -> Outcome:
    """The mail, arrived in office `code`'s INBOX at `when` and read then (or at `read`)."""
    clock.set(read or when)
    return pipe.process(FetchedMail(code, "INBOX", 7, next(_uids), raw, when))


def the_ticket(engine: Engine) -> Ticket:
    with db.reading(engine) as s:
        (found,) = tickets.list_tickets(s)
        s.expunge(found)
        return found


def events(engine: Engine) -> list[tuple[str, str]]:
    with db.reading(engine) as s:
        return [(e.event, e.detail) for e in tickets.ticket_events(s, the_ticket(engine).id)]


def wait_then_clarify(
    pipe: Pipeline,
    clock: FrozenClock,
    code: str,
    asked: datetime,
    waited: datetime,
    clarified: datetime,
    read: datetime | None = None,
) -> None:
    """Rina asks office `code`; an officer puts it to waiting (#tunggu); Rina clarifies."""
    office = f"bps{code}@bps.go.id"
    raw, mid = make_mail(RINA, to=office)
    assert deliver(pipe, clock, code, raw, asked) is Outcome.TICKET_CREATED
    thread = (("In-Reply-To", f"<{mid}>"), ("References", f"<{mid}>"))
    subject = "Re: Permohonan data"
    raw, _ = make_mail(OFFICER, to=office, subject=subject, body="#tunggu tahun berapa?", headers=thread)
    assert deliver(pipe, clock, code, raw, waited) is Outcome.FOLLOWUP
    raw, _ = make_mail(RINA, to=office, subject=subject, body="Tahun 2024 saja.", headers=thread)
    assert deliver(pipe, clock, code, raw, clarified, read) is Outcome.FOLLOWUP


@pytest.fixture
def pipe(settings: Settings, engine: Engine, clock: FrozenClock) -> Pipeline:
    return Pipeline(settings, engine, Renderer(), clock)


# Request Monday 23 November 09:00, #tunggu at 10:00 (Tulang Bawang 1808 and Pasuruan 3514: WIB,
# Mon-Thu 08:00-15:30, Fri 08:00-16:00; Halmahera Utara 8205 the same hours in WIT).
@pytest.mark.parametrize(
    ("code", "clarified", "due", "event"),
    [
        # restart: 3 working days from the clarification, as for a new mail
        ("1808", at(24, 10, 30), at(27, 10, 30), "clarified"),  # in hours: Friday, same time
        ("1808", at(24, 20, 0), at(27, 16, 0), "clarified"),  # evening: Wed is day 1, Friday's closing
        ("1808", at(28, 11, 0), at(32, 15, 30), "clarified"),  # Saturday: Mon is day 1, Wed's closing
        ("1808", at(27, 15, 45), at(32, 15, 30), "clarified"),  # Friday 15:45: Wednesday, clamped to closing
        ("8205", at(24, 10, 30, WIT), at(27, 10, 30, WIT), "clarified"),  # the same in WIT
        # pause (Pasuruan): the first deadline, Wednesday 09:00, moves by the office hours waited
        ("3514", at(24, 10, 30), at(26, 9, 30), "resumed"),  # 5:30 Mon + 2:30 Tue = 8:00 later
        ("3514", at(28, 11, 0), at(31, 14, 30), "resumed"),  # Mon 10:00 to Friday closing: 36:00 later
    ],
)
def test_clarification_after_a_wait_sets_the_deadline_by_the_office_policy(
    pipe: Pipeline,
    engine: Engine,
    clock: FrozenClock,
    code: str,
    clarified: datetime,
    due: datetime,
    event: str,
) -> None:
    """A clarification after #tunggu restarts a full period where the office restarts (outside
    hours from the next opening) and only moves the deadline by the wait where it pauses."""
    tz = WIT if code == "8205" else WIB
    wait_then_clarify(pipe, clock, code, at(23, 9, tz=tz), at(23, 10, tz=tz), clarified)
    t = the_ticket(engine)
    assert (t.state, t.due_at.astimezone(tz)) == ("open", due)
    assert [e for e, _ in events(engine)] == ["waiting", event]


def test_restart_is_a_new_clock_round_recorded_with_its_reason(
    pipe: Pipeline, engine: Engine, clock: FrozenClock
) -> None:
    """The restart is a ticket event naming the policy and a new round of the clock, so reminders
    and escalation start again for the new deadline; a pause stays in the first round."""
    wait_then_clarify(pipe, clock, "1808", at(23, 9), at(23, 10), at(24, 10, 30))
    assert the_ticket(engine).clock_round == 2
    (_, detail) = events(engine)[-1]
    assert "after_wait = restart" in detail
    with db.reading(engine) as s:
        _, history = tickets.ticket_clock(s, the_ticket(engine).id)
    assert lifecycle.clock_round(history) == 2
    start, paused = lifecycle.clock_basis(at(23, 9), history, at(25, 9))
    assert (start, paused) == (at(24, 10, 30), [])  # counted from the clarification, no pause left


def test_pause_keeps_the_clock_round(pipe: Pipeline, engine: Engine, clock: FrozenClock) -> None:
    """Where the office pauses, the clarification moves the deadline within the first round."""
    wait_then_clarify(pipe, clock, "3514", at(23, 9), at(23, 10), at(24, 10, 30))
    assert the_ticket(engine).clock_round == 1


@pytest.mark.parametrize(
    ("state", "after_wait", "event", "fresh", "resume"),
    [
        (TicketState.WAITING, AfterWait.PAUSE, "resumed", False, True),
        (TicketState.WAITING, AfterWait.RESTART, "clarified", True, False),
        (TicketState.ANSWERED, AfterWait.RESTART, "replied", True, False),  # an answer: as before
        (TicketState.ANSWERED, AfterWait.PAUSE, "replied", True, False),
    ],
)
def test_requester_writing_again_by_policy(
    state: TicketState, after_wait: AfterWait, event: str, fresh: bool, resume: bool
) -> None:
    """The policy decides only what a reply to a waiting ticket does; the ticket opens either way."""
    change = lifecycle.requester_wrote(state, thanks=False, after_wait=after_wait)
    assert change is not None
    assert (change.state, change.event, change.fresh_clock, change.resume) == ("open", event, fresh, resume)
    assert change.resolution is Resolution.NONE


def test_open_ticket_is_not_moved_by_either_policy() -> None:
    """A reply to a ticket still open changes nothing, whatever the office's policy."""
    for after_wait in AfterWait:
        assert lifecycle.requester_wrote(TicketState.OPEN, thanks=False, after_wait=after_wait) is None


def test_restart_counts_from_receipt_not_from_reading(
    pipe: Pipeline, engine: Engine, clock: FrozenClock
) -> None:
    """A clarification read late (the desk was down until the evening) counts from when the
    office's server got it, Tuesday 10:30, not from when the desk read it."""
    wait_then_clarify(pipe, clock, "1808", at(23, 9), at(23, 10), at(24, 10, 30), read=at(24, 19))
    assert the_ticket(engine).due_at.astimezone(WIB) == at(27, 10, 30)
