"""No acknowledgement at night for old mail (mailer/quiet.py): the rule as a table of cases, and
the pipeline queueing acknowledgements under a frozen clock (held, or due at once)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from mailer.clock import FrozenClock
from mailer.decide import quiet
from mailer.delivery.render import Renderer
from mailer.model import FetchedMail
from mailer.operator.cli import _delivery_text
from mailer.pipeline.driver import Pipeline
from mailer.settings import Settings
from storage import db
from storage.tables import OutboxRow
from tests.conftest import make_mail, requester

WIB, WIT = ZoneInfo("Asia/Jakarta"), ZoneInfo("Asia/Jayapura")
NIGHT = ("21:00", "06:00")
IMMEDIATE = timedelta(minutes=60)  # acknowledgement.immediate_within_minutes as shipped
_uids = itertools.count(1)


def at(zone: ZoneInfo, day: int, hour: int, minute: int = 0) -> datetime:
    """A wall-clock time of November 2026 in `zone`, as aware UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=zone).astimezone(UTC)


# (received, now, zone, quiet hours, held until or None)
HOLD_CASES = [
    pytest.param(at(WIB, 23, 20, 30), at(WIB, 23, 20, 31), WIB, NIGHT, None, id="fresh-in-the-evening"),
    pytest.param(at(WIB, 23, 19), at(WIB, 23, 20, 59), WIB, NIGHT, None, id="old-but-before-21"),
    pytest.param(
        at(WIB, 23, 19), at(WIB, 23, 21), WIB, NIGHT, at(WIB, 24, 6), id="old-at-21-until-6-tomorrow"
    ),
    pytest.param(at(WIB, 24, 2), at(WIB, 24, 2, 59), WIB, NIGHT, None, id="fresh-at-3am-goes-at-once"),
    pytest.param(at(WIB, 24, 2), at(WIB, 24, 3), WIB, NIGHT, at(WIB, 24, 6), id="exactly-60-min-is-old"),
    pytest.param(at(WIB, 23, 19), at(WIB, 24, 5, 59), WIB, NIGHT, at(WIB, 24, 6), id="old-at-0559"),
    pytest.param(at(WIB, 23, 19), at(WIB, 24, 6), WIB, NIGHT, None, id="old-at-6-goes"),
    pytest.param(
        at(WIB, 22, 10), at(WIB, 23, 23, 30), WIB, NIGHT, at(WIB, 24, 6), id="a-day-old-before-midnight"
    ),
    pytest.param(at(WIB, 23, 18), at(WIB, 23, 20, 30), WIB, NIGHT, None, id="2030-wib-is-day-in-pasuruan"),
    pytest.param(
        at(WIB, 23, 18), at(WIB, 23, 20, 30), WIT, NIGHT, at(WIT, 24, 6), id="same-instant-2230-wit"
    ),
    pytest.param(
        at(WIB, 23, 18), at(WIB, 23, 23), WIB, ("00:00", "06:00"), None, id="after-midnight-only-2300"
    ),
    pytest.param(
        at(WIB, 23, 18),
        at(WIB, 24, 1),
        WIB,
        ("00:00", "06:00"),
        at(WIB, 24, 6),
        id="after-midnight-only-0100",
    ),
    pytest.param(at(WIB, 23, 18), at(WIB, 24, 3), WIB, ("00:00", "00:00"), None, id="no-quiet-hours"),
]


@pytest.mark.parametrize(("received", "now", "zone", "hours", "until"), HOLD_CASES)
def test_hold_until(
    received: datetime, now: datetime, zone: ZoneInfo, hours: tuple[str, str], until: datetime | None
) -> None:
    """An ack of mail received 60 minutes or more ago is held until the quiet hours (office
    local time) end when it would go in them; else it goes now."""
    clock = FrozenClock(now)
    assert quiet.hold_until(received + IMMEDIATE, clock.now(), zone, hours) == until


def test_mail_without_quiet_after_is_never_held() -> None:
    """A mail queued without quiet_after (notices, digests: held by working hours instead)
    goes at 03:00 as far as the quiet hours are concerned."""
    assert quiet.hold_until(None, at(WIB, 24, 3), WIB, NIGHT) is None


NOW = at(WIB, 24, 3)
RECEIVED_CASES = [
    pytest.param(at(WIB, 23, 19), at(WIB, 23, 18), at(WIB, 23, 19), id="internaldate-first"),
    pytest.param(None, at(WIB, 23, 18), at(WIB, 23, 18), id="date-header-without-internaldate"),
    pytest.param(None, NOW + timedelta(days=2), NOW, id="date-in-the-future-bounded-by-now"),
    pytest.param(NOW + timedelta(minutes=5), None, NOW, id="internaldate-ahead-bounded-by-now"),
    pytest.param(None, None, NOW, id="neither-is-now"),
]


@pytest.mark.parametrize(("internal", "header", "expected"), RECEIVED_CASES)
def test_received_time(internal: datetime | None, header: datetime | None, expected: datetime) -> None:
    """A mail's arrival: INTERNALDATE, else the Date header, never later than now."""
    assert quiet.received_time(internal, header, NOW) == expected


# (INTERNALDATE, Date header, pipeline's now, due at)
QUEUE_CASES = [
    pytest.param(at(WIB, 23, 19), at(WIB, 23, 19), at(WIB, 24, 3), at(WIB, 24, 6), id="backlog-at-3am-held"),
    pytest.param(
        at(WIB, 24, 2, 50), at(WIB, 24, 2, 50), at(WIB, 24, 3), at(WIB, 24, 3), id="fresh-at-3am-at-once"
    ),
    pytest.param(at(WIB, 23, 8), at(WIB, 23, 8), at(WIB, 23, 14), at(WIB, 23, 14), id="old-by-day-at-once"),
    pytest.param(None, at(WIB, 23, 19), at(WIB, 24, 3), at(WIB, 24, 6), id="no-internaldate-date-header-old"),
    pytest.param(
        None, at(WIB, 24, 2, 59), at(WIB, 24, 3), at(WIB, 24, 3), id="no-internaldate-date-header-new"
    ),
]


@pytest.mark.parametrize(("internal", "header", "now", "due"), QUEUE_CASES)
def test_pipeline_queues_ack_due_by_the_rule(
    settings: Settings,
    engine: Engine,
    internal: datetime | None,
    header: datetime,
    now: datetime,
    due: datetime,
) -> None:
    """The acknowledge step queues the ack due at once, or at 06:00 for old mail read at
    night, and records from when it must wait out the night (the sender checks again)."""
    clock = FrozenClock(now)
    pipeline = Pipeline(settings, engine, Renderer(), clock)
    raw, _ = make_mail(requester(), date=header)
    pipeline.process(FetchedMail("3514", "INBOX", 7, next(_uids), raw, internal))
    with db.reading(engine) as s:
        (row,) = s.execute(select(OutboxRow)).scalars()
    assert row.next_attempt_at == due
    assert row.quiet_after == (internal or header) + timedelta(minutes=60)


@pytest.mark.parametrize(
    ("state", "due_hour", "error", "shown"),
    [
        ("pending", 6, "", "  [pending, due 2026-11-24 06:00]"),  # held: the quiet hours
        ("pending", 2, "", "  [pending]"),  # due already: goes with the next round
        ("failed", 6, "550 5.1.1 no such user", "  [failed, 550 5.1.1 no such user]"),
    ],
)
def test_show_says_until_when_a_delivery_is_held(state: str, due_hour: int, error: str, shown: str) -> None:
    """`mailer show` prints a held delivery with the local time it is due, others as before."""
    row = OutboxRow(
        office_code="3514", message_pk=1, envelope_from="a", envelope_to="b", state=state,
        next_attempt_at=at(WIB, 24, due_hour), last_error=error, created_at=at(WIB, 24, 3),
    )  # fmt: skip
    assert _delivery_text(row, WIB, at(WIB, 24, 3)) == shown
