"""The outbox: one delivery row per outgoing mail, pending ─▶ sending ─▶ sent | failed, or
suppressed (found at send time no longer to go).

A mail is queued in the transaction that rendered it (mailer's outbox.enqueue); a sender claims
it, sends it and records the result, one commit per mail (`advance_outbox`, prepared
statements on a bare connection: storage/prepared.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, and_, bindparam, case, exists, func, insert, literal, or_, select, update
from sqlmodel import Session, col

from storage.prepared import Prepared, rowcount, table_of
from storage.tables import AddressFlag, MessageRow, OutboxRow, Ticket
from storage.vocabulary import NOT_TO_ANSWER, MessageKind, OutboxState, ShownOutboxState

_O, _M, _T, _F = table_of(OutboxRow), table_of(MessageRow), table_of(Ticket), table_of(AddressFlag)
_INSERT_OUTBOX = Prepared(insert(_O).returning(_O.c.id), _O)
# The claim of the next mail re-checks, in the same statement, what may have changed since it
# was queued: a flag on its recipient (bouncing, complained), and for a mail to a ticket's
# requester the ticket settled as spam or duplicate (two primary-key lookups).
_CLAIM = Prepared(
    update(_O)
    .where(
        _O.c.id == bindparam("outbox"),
        _O.c.state == OutboxState.PENDING,
        ~exists().where(_F.c.office_code == _O.c.office_code, _F.c.address == _O.c.envelope_to),
        ~exists().where(
            _T.c.id == _O.c.ticket_id,
            _T.c.requester_email == _O.c.envelope_to,
            or_(*(_T.c.resolution == value for value in NOT_TO_ANSWER)),  # no IN: compiled once
        ),
    )
    .values(state=OutboxState.SENDING)
)
_SENT = (  # only a mail in flight: a record written twice (a retried commit) counts once
    update(_O)
    .where(_O.c.id == bindparam("outbox"), _O.c.state == OutboxState.SENDING)
    .values(state=OutboxState.SENT, sent_at=bindparam("now"), attempts=_O.c.attempts + 1, last_error="")
)
_MARK_SENT = Prepared(_SENT)


def add_outbox(
    s: Session,
    *,
    office_code: str,
    message_pk: int,
    ticket_id: int | None,
    envelope_from: str,
    envelope_to: str,
    next_attempt_at: datetime,
    created_at: datetime,
    quiet_after: datetime | None = None,
    author: str = "",
    envelope_sender: str = "",
) -> int:
    """Queue stored outgoing message `message_pk` for delivery, due at `next_attempt_at` (from
    `quiet_after` on it waits out the quiet hours); `author`, `envelope_sender`: of the incoming
    mail that caused it, if one did. Returns the outbox id."""
    values = {
        "author": author,
        "envelope_sender": envelope_sender,
        "office_code": office_code,
        "message_pk": message_pk,
        "ticket_id": ticket_id,
        "envelope_from": envelope_from,
        "envelope_to": envelope_to,
        "next_attempt_at": next_attempt_at,
        "created_at": created_at,
        "quiet_after": quiet_after,
        "state": OutboxState.PENDING,
    }
    return int(_INSERT_OUTBOX.run(s, values).fetchone()[0])


class OutboxItem(NamedTuple):
    """One mail to deliver: outbox id, envelope, the bytes, attempts so far, for log context."""

    id: int
    office_code: str
    envelope_from: str
    envelope_to: str
    raw: bytes
    attempts: int
    message_id: str | None
    ticket_ref: str | None
    quiet_after: datetime | None  # from then on it waits out the night (mailer/quiet.py)


def due_outbox(s: Session, office: str, now: datetime, limit: int) -> list[OutboxItem]:
    """Up to `limit` due mails of an office, oldest first (not yet marked: see advance_outbox)."""
    rows = s.execute(
        select(
            col(OutboxRow.id),
            col(OutboxRow.office_code),
            col(OutboxRow.envelope_from),
            col(OutboxRow.envelope_to),
            col(MessageRow.raw),
            col(OutboxRow.attempts),
            col(MessageRow.message_id),
            col(Ticket.ref),
            col(OutboxRow.quiet_after),
        )
        .join(MessageRow, col(MessageRow.id) == col(OutboxRow.message_pk))
        .outerjoin(Ticket, col(Ticket.id) == col(OutboxRow.ticket_id))
        .where(
            col(OutboxRow.office_code) == office,
            col(OutboxRow.state) == OutboxState.PENDING,
            col(OutboxRow.next_attempt_at) <= now,
        )
        .order_by(col(OutboxRow.id))
        .limit(limit)
    ).all()
    return [OutboxItem(*row) for row in rows]


def advance_outbox(conn: Connection, sent_id: int | None, sending_id: int | None, now: datetime) -> bool:
    """One commit per mail: record the previous mail `sent` and mark the next one `sending`
    (in flight), so a stop leaves at most one mail per sender whose fate is unknown. Takes a
    bare connection (storage.db.statements): it runs once per mail sent. Returns whether
    `sending_id` was claimed: not when it is no longer pending, its recipient is flagged, or it
    goes to the requester of a ticket settled as spam or duplicate (see outbox_hindrance)."""
    if sent_id is not None:
        _MARK_SENT.run(conn, {"outbox": sent_id, "now": now})
    if sending_id is None:
        return False
    return int(_CLAIM.run(conn, {"outbox": sending_id}).rowcount) == 1


def settle_outbox(s: Session, sent_id: int | None, claimed_id: int | None, now: datetime) -> None:
    """After a failed `advance_outbox`, retried until it succeeds: record `sent_id` sent and put
    `claimed_id` back to `pending` if the failed commit went through after all (it was not sent)."""
    if sent_id is not None:
        _MARK_SENT.run(s, {"outbox": sent_id, "now": now})
    if claimed_id is not None:
        s.execute(
            update(OutboxRow)
            .where(col(OutboxRow.id) == claimed_id, col(OutboxRow.state) == OutboxState.SENDING)
            .values(state=OutboxState.PENDING)
        )


class Hindrance(NamedTuple):
    """Why a mail may not be claimed: its state, the flag on its recipient (flag, since, reason;
    "" when none), and its ticket's ref and resolution when it goes to that ticket's requester
    ("" otherwise)."""

    state: str
    flag: str
    flag_since: datetime | None
    flag_reason: str
    ticket_ref: str
    resolution: str


def outbox_hindrance(conn: Connection, outbox_id: int) -> Hindrance | None:
    """What stands in the way of a mail the claim refused (None: no such row)."""
    row = conn.execute(
        select(
            _O.c.state,
            _F.c.flag,
            _F.c.since,
            _F.c.reason,
            _T.c.ref,
            _T.c.resolution,
            _T.c.requester_email == _O.c.envelope_to,
        )
        .select_from(
            _O.outerjoin(
                _F, and_(_F.c.office_code == _O.c.office_code, _F.c.address == _O.c.envelope_to)
            ).outerjoin(_T, _T.c.id == _O.c.ticket_id)
        )
        .where(_O.c.id == outbox_id)
    ).first()
    if row is None:
        return None
    state, flag, since, reason, ref, resolution, to_requester = row
    if not to_requester:
        ref, resolution = None, None
    return Hindrance(state, flag or "", since, reason or "", ref or "", resolution or "")


def suppress_outbox(conn: Connection, outbox_id: int, reason: str) -> bool:
    """Mark a pending mail `suppressed` for good (never sent), with why; returns whether it was."""
    done = conn.execute(
        update(_O)
        .where(_O.c.id == outbox_id, _O.c.state == OutboxState.PENDING)
        .values(state=OutboxState.SUPPRESSED, last_error=reason)
    )
    return int(done.rowcount) == 1


def hold_outbox(conn: Connection, outbox_id: int, until: datetime) -> None:
    """Keep a pending mail for later: due again at `until` (the end of the quiet hours)."""
    conn.execute(
        update(_O)
        .where(_O.c.id == outbox_id, _O.c.state == OutboxState.PENDING)
        .values(next_attempt_at=until)
    )


def defer_outbox(s: Session, outbox_id: int, at: datetime) -> None:
    """Hold a queued mail until `at` (e.g. the office's next opening: no mail at night)."""
    s.execute(update(OutboxRow).where(col(OutboxRow.id) == outbox_id).values(next_attempt_at=at))


def release_interrupted(s: Session, office: str) -> int:
    """Put back mails a stopped process left `sending` (they are sent again); returns how many."""
    done = s.execute(
        update(OutboxRow)
        .where(col(OutboxRow.office_code) == office, col(OutboxRow.state) == OutboxState.SENDING)
        .values(state=OutboxState.PENDING)
    )
    return rowcount(done)


def mark_retry(s: Session, outbox_id: int, error: str, next_attempt_at: datetime) -> None:
    """Count a failed attempt of a mail and make it due again at `next_attempt_at`."""
    s.execute(
        update(OutboxRow)
        .where(col(OutboxRow.id) == outbox_id)
        .values(
            state=OutboxState.PENDING,
            attempts=col(OutboxRow.attempts) + 1,
            last_error=error,
            next_attempt_at=next_attempt_at,
        )
    )


def postpone_outbox(s: Session, outbox_id: int, error: str, next_attempt_at: datetime) -> None:
    """Make a mail due again at `next_attempt_at` without counting an attempt: it was not the
    mail that failed (the server refused our login)."""
    s.execute(
        update(OutboxRow)
        .where(col(OutboxRow.id) == outbox_id)
        .values(state=OutboxState.PENDING, last_error=error, next_attempt_at=next_attempt_at)
    )


def mark_failed(s: Session, outbox_id: int, error: str, now: datetime) -> None:
    """Count a last attempt of a mail and record it failed for good, with why."""
    s.execute(
        update(OutboxRow)
        .where(col(OutboxRow.id) == outbox_id)
        .values(
            state=OutboxState.FAILED, attempts=col(OutboxRow.attempts) + 1, last_error=error, failed_at=now
        )
    )


def next_outbox_due(s: Session, office: str) -> datetime | None:
    """When the earliest pending mail of an office is due, or None."""
    value = s.execute(
        select(func.min(col(OutboxRow.next_attempt_at))).where(
            col(OutboxRow.office_code) == office,
            col(OutboxRow.state) == OutboxState.PENDING,
        )
    ).scalar()
    return value


_COUNT_MAIL_TO = (
    select(func.count())
    .select_from(_O.join(_M, _M.c.id == _O.c.message_pk))
    .where(
        _O.c.office_code == bindparam("office"),
        _O.c.envelope_to == bindparam("address"),
        _O.c.created_at >= bindparam("since"),
        _M.c.kind.in_(bindparam("kinds", expanding=True)),
    )
)


def count_mail_to(
    s: Session, office: str, address: str, since: datetime, kinds: Sequence[MessageKind]
) -> int:
    """How many mails of these kinds (e.g. acks) this office queued for `address` since `since`
    (index ix_outbox_office_to_created; rows of this transaction included)."""
    values = {"office": office, "address": address, "since": since, "kinds": list(kinds)}
    return int(s.connection().execute(_COUNT_MAIL_TO, values).scalar_one())


def _capped_count(office: str, since: datetime, kinds: Sequence[MessageKind], cap: int, *where: Any) -> Any:
    """How many such rows, counted no further than `cap` (a limit only needs to know whether it
    is reached: a flood costs each mail at most `cap` index rows, not the hour's whole queue)."""
    rows = (
        select(_O.c.id)
        .select_from(_O.join(_M, _M.c.id == _O.c.message_pk))
        .where(_O.c.office_code == office, _O.c.created_at >= since, _M.c.kind.in_(list(kinds)), *where)
        .limit(cap)
        .subquery()
    )
    return select(func.count()).select_from(rows).scalar_subquery()


def count_recent_mail(
    s: Session,
    office: str,
    since: datetime,
    kinds: Sequence[MessageKind],
    who: tuple[str, str, str],
    caps: tuple[int, int],
) -> tuple[int, int, int, int]:
    """Mails of these kinds the office queued since `since`: (to `who[0]`, caused by the author
    `who[1]`, caused by the envelope sender `who[2]`, in all); each of the first three counted up
    to `caps[0]`, the last up to `caps[1]`; rows of this transaction included (indexes
    ix_outbox_office_{to,author,envelope_sender,}_created). An empty author or envelope sender
    counts 0: no unknown sender is one sender."""
    to, author, envelope_sender = who
    per_sender, per_office = caps
    statement = select(
        _capped_count(office, since, kinds, per_sender, _O.c.envelope_to == to),
        _capped_count(office, since, kinds, per_sender, _O.c.author == author) if author else literal(0),
        _capped_count(office, since, kinds, per_sender, _O.c.envelope_sender == envelope_sender)
        if envelope_sender
        else literal(0),
        _capped_count(office, since, kinds, per_office),
    )
    row = s.connection().execute(statement).one()
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


# --- as operators see it: `mailer outbox`, `mailer status` -----------------------------------

# A pending mail that was tried and is waiting for its retry is shown "deferred" (.value: a
# plain str, so that SQLAlchemy types the CASE as text, as it does the column).
SHOWN_STATE = case(
    (and_(_O.c.state == OutboxState.PENDING, _O.c.attempts > 0), ShownOutboxState.DEFERRED.value),
    else_=_O.c.state,
)


class Delivery(NamedTuple):
    """An outbox row as `mailer outbox` lists it (state as shown: ShownOutboxState)."""

    id: int
    office_code: str
    ticket_ref: str | None
    kind: str  # ack | notice | digest | closing | …
    envelope_to: str
    state: str
    attempts: int
    last_error: str
    next_attempt_at: datetime
    created_at: datetime
    sent_at: datetime | None
    failed_at: datetime | None


_DELIVERY = select(
    _O.c.id,
    _O.c.office_code,
    _T.c.ref,
    _M.c.kind,
    _O.c.envelope_to,
    SHOWN_STATE,
    _O.c.attempts,
    _O.c.last_error,
    _O.c.next_attempt_at,
    _O.c.created_at,
    _O.c.sent_at,
    _O.c.failed_at,
).select_from(_O.join(_M, _M.c.id == _O.c.message_pk).outerjoin(_T, _T.c.id == _O.c.ticket_id))


def deliveries(
    s: Session, office: str | None = None, state: ShownOutboxState | None = None, limit: int = 50
) -> list[Delivery]:
    """Outbox rows, newest first, optionally of one office and one shown state."""
    query = _DELIVERY.order_by(_O.c.id.desc()).limit(limit)
    if office:
        query = query.where(_O.c.office_code == office)
    if state:
        query = query.where(SHOWN_STATE.in_([state]))
    return [Delivery._make(row) for row in s.connection().execute(query)]


def delivery(s: Session, outbox_id: int) -> Delivery | None:
    """One outbox row as `mailer outbox` shows it, or None."""
    row = s.connection().execute(_DELIVERY.where(_O.c.id == outbox_id)).first()
    return None if row is None else Delivery._make(row)


def release_failed_delivery(s: Session, outbox_id: int, now: datetime) -> bool:
    """Put a failed delivery back in the queue, due now, its attempts counted afresh (the error
    stays until the next attempt); False unless it was `failed`."""
    done = s.execute(
        update(OutboxRow)
        .where(col(OutboxRow.id) == outbox_id, col(OutboxRow.state) == OutboxState.FAILED)
        .values(state=OutboxState.PENDING, attempts=0, next_attempt_at=now, failed_at=None)
    )
    return rowcount(done) == 1
