"""The claim of the next mail re-checks what changed since it was queued (outbox.advance_outbox,
outbox.suppression_reason), on SQLite and PostgreSQL: a flag on the recipient, the requester's
ticket settled as spam or duplicate. A mail to a head of office on the same ticket is not held
back by what concerns the requester, only by a flag on its own address."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from mailer.clock import FrozenClock
from mailer.daemon import open_database
from mailer.delivery.guard import suppression_reason
from mailer.delivery.queue import enqueue
from mailer.delivery.render import Outgoing, Renderer
from mailer.model import FetchedMail
from mailer.pipeline.driver import Pipeline
from mailer.settings import Settings
from storage import db, flags, outbox, tickets
from storage.tables import OutboxRow
from tests.conftest import make_mail

REQUESTER, HEAD = "rina@unair.example", "kepala3514@bps.go.id"
_uids = itertools.count(1)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, settings: Settings, clock: FrozenClock) -> Iterator[Engine]:
    chosen = settings if request.param == "sqlite" else request.getfixturevalue("postgres")
    engine = open_database(chosen, clock)
    yield engine
    engine.dispose()


def queue_ack_and_head_mail(settings: Settings, engine: Engine, clock: FrozenClock) -> tuple[int, int, int]:
    """A request processed (its ack queued) and a mail to the head of office on the same ticket:
    returns (ticket id, ack outbox id, head mail outbox id)."""
    Pipeline(settings, engine, Renderer(), clock).process(
        FetchedMail("3514", "INBOX", 7, next(_uids), make_mail(REQUESTER)[0])
    )
    with db.transaction(engine) as s:
        (ack,) = s.execute(select(OutboxRow)).scalars()
        assert ack.ticket_id is not None and ack.id is not None
        out = Outgoing(
            "head.1@bps.go.id", "bps3514@bps.go.id", HEAD, "Pengaduan", "isi", b"Subject: x\r\n\r\nisi\r\n"
        )
        head = enqueue(
            s, settings.office("3514"), ack.ticket_id, "complaint_notice", "test", out, clock.now()
        )
        return ack.ticket_id, ack.id, head


def claim(engine: Engine, outbox_id: int, clock: FrozenClock) -> tuple[bool, str]:
    """(claimed, why not) for one mail, as the sender's commit does it."""
    with db.statements(engine) as conn:
        if outbox.advance_outbox(conn, None, outbox_id, clock.now()):
            return True, ""
        found = outbox.outbox_hindrance(conn, outbox_id)
        assert found is not None
        return False, suppression_reason(found)


def test_flagged_requester_stops_the_ack_not_the_heads_mail(
    settings: Settings, database: Engine, clock: FrozenClock
) -> None:
    """The requester flagged bouncing after the ack was queued: the ack is not claimed, with the
    flag as the reason; the head's mail on the same ticket is claimed."""
    _ticket, ack, head = queue_ack_and_head_mail(settings, database, clock)
    with db.transaction(database) as s:
        flags.flag_address(s, "3514", REQUESTER, "bouncing", clock.now(), "550 5.1.1 user unknown", None)
    claimed, why = claim(database, ack, clock)
    assert not claimed and why.startswith("recipient is bouncing since") and "5.1.1" in why
    assert claim(database, head, clock) == (True, "")


@pytest.mark.parametrize("resolution", ["spam", "duplicate"])
def test_ticket_settled_as_spam_or_duplicate_stops_the_ack_not_the_heads_mail(
    settings: Settings, database: Engine, clock: FrozenClock, resolution: str
) -> None:
    """An officer settled the ticket as spam/duplicate after the ack was queued: the ack is not
    claimed, with the ticket's resolution as the reason; the head's mail is claimed."""
    ticket, ack, head = queue_ack_and_head_mail(settings, database, clock)
    with db.transaction(database) as s:
        tickets.change_ticket(s, ticket, state="answered", at=clock.now(), resolution=resolution)
    claimed, why = claim(database, ack, clock)
    assert not claimed and f"was settled as {resolution}" in why
    assert claim(database, head, clock) == (True, "")


def test_flag_on_the_heads_own_address_stops_the_heads_mail(
    settings: Settings, database: Engine, clock: FrozenClock
) -> None:
    """A flag on the head's own address stops the head's mail; the ack still goes."""
    _ticket, ack, head = queue_ack_and_head_mail(settings, database, clock)
    with db.transaction(database) as s:
        flags.flag_address(s, "3514", HEAD, "complained", clock.now(), "ARF abuse report", None)
    claimed, why = claim(database, head, clock)
    assert not claimed and why.startswith("recipient is complained")
    assert claim(database, ack, clock) == (True, "")


def test_a_mail_no_longer_pending_is_neither_claimed_nor_suppressed(
    settings: Settings, database: Engine, clock: FrozenClock
) -> None:
    """A mail already in flight (or sent) is not claimed a second time and gets no reason."""
    _ticket, ack, _head = queue_ack_and_head_mail(settings, database, clock)
    assert claim(database, ack, clock) == (True, "")
    assert claim(database, ack, clock) == (False, "")


def test_mail_left_in_flight_by_a_stop_is_checked_again_after_the_restart(
    settings: Settings, database: Engine, clock: FrozenClock
) -> None:
    """A mail a killed sender left `sending` goes back to pending at the restart and is claimed
    again: a flag set meanwhile stops it then."""
    _ticket, ack, _head = queue_ack_and_head_mail(settings, database, clock)
    assert claim(database, ack, clock) == (True, "")  # in flight when the process died
    with db.transaction(database) as s:
        flags.flag_address(s, "3514", REQUESTER, "complained", clock.now(), "ARF abuse report", None)
        assert outbox.release_interrupted(s, "3514") == 1
    claimed, why = claim(database, ack, clock)
    assert not claimed and why.startswith("recipient is complained")
