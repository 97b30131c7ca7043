"""Every query of the project. Functions take a Session (from storage.db) and plain values.

The per-mail hot path runs statements built once against the tables (Core, not the ORM):
the same tables and SQL, about half the CPU per mail.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Result, bindparam, func, insert, select, update
from sqlmodel import Session, col

from storage.tables import (
    DeadLetter,
    MailboxCursor,
    MessageRow,
    OfficeRow,
    OutboxRow,
    Ticket,
    TicketCounter,
)


class TicketRef(NamedTuple):
    """The few facts of a ticket the pipeline needs: (id, ref, state, requester_email)."""

    id: int
    ref: str
    state: str
    requester_email: str


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


class _Prepared:
    """A hot statement compiled once per dialect and run on the DBAPI cursor of the session's
    connection, inside its transaction. SQLAlchemy's per-call work (cache key, parameter set-up,
    result wrapping) was about a third of the CPU of storing a mail; this keeps the same SQL and
    the same conversions (each parameter through its type's bind processor, e.g. UTCDateTime).
    Inserts fill the columns' scalar Python defaults as SQLAlchemy would, and take the set of
    columns given (one compiled form per set)."""

    def __init__(self, statement: Any, table: Any = None) -> None:
        self.statement, self.table = statement, table
        self._forms: dict[tuple[str, frozenset[str]], _Form] = {}

    def run(self, conn: Connection | Session, params: dict[str, Any]) -> Any:
        """Execute with `params`; returns the DBAPI cursor (fetchone/rowcount)."""
        connection = conn.connection() if isinstance(conn, Session) else conn
        keys = frozenset(params) if self.table is not None else frozenset()
        form = self._forms.get((connection.dialect.name, keys))
        if form is None:
            form = self._forms[(connection.dialect.name, keys)] = self._compile(connection, keys)
        values = {**form.defaults, **params} if form.defaults else params
        args: Any = {}
        for name, (processor, fixed) in form.binds.items():
            value = values.get(name, fixed)
            args[name] = processor(value) if processor is not None else value
        if form.order is not None:
            args = [args[name] for name in form.order]
        cursor = connection.connection.cursor()
        cursor.execute(form.sql, args)
        return cursor

    def _compile(self, connection: Connection, keys: frozenset[str]) -> _Form:
        dialect, defaults = connection.dialect, {}
        column_keys = None
        if self.table is not None:
            for column in self.table.columns:
                if column.key not in keys and column.default is not None and column.default.is_scalar:
                    defaults[column.key] = column.default.arg
            column_keys = sorted(keys | defaults.keys())
        compiled = self.statement.compile(dialect=dialect, column_keys=column_keys)
        binds = {
            name: (bind.type.bind_processor(dialect), bind.effective_value)
            for name, bind in compiled.binds.items()
        }
        order = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None
        return _Form(compiled.string, order, binds, defaults)


class _Form(NamedTuple):
    sql: str
    order: tuple[str, ...] | None  # parameter names in placeholder order (qmark), else by name
    binds: dict[str, tuple[Any, Any]]  # name -> (bind processor or None, value of a literal)
    defaults: dict[str, Any]


def _rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE touched (CursorResult.rowcount; the Session types it as a plain Result)."""
    return int(getattr(result, "rowcount", 0))


# --- offices and cursors ---------------------------------------------------------------


def sync_offices(s: Session, offices: Iterable[dict[str, Any]], now: datetime) -> None:
    """Insert or update the offices of the settings (keys: code, name, email, province_code, time_zone)."""
    for office in offices:
        row = s.get(OfficeRow, office["code"])
        if row is None:
            s.add(OfficeRow(**office, updated_at=now))
        else:
            for key, value in office.items():
                setattr(row, key, value)
            row.updated_at = now


def get_cursor(s: Session, office: str, folder: str) -> tuple[int, int] | None:
    """(uidvalidity, last_uid) of a mailbox, or None before its first pass."""
    row = s.connection().execute(_GET_CURSOR, {"office": office, "box": folder}).first()
    return None if row is None else (int(row[0]), int(row[1]))


def save_cursor(s: Session, office: str, folder: str, uidvalidity: int, last_uid: int, now: datetime) -> None:
    """Move the cursor (created on first use)."""
    values = {
        "office": office,
        "box": folder,
        "validity": uidvalidity,
        "uid": last_uid,
        "now": now,
    }
    if _MOVE_CURSOR_P.run(s, values).rowcount == 0:
        _NEW_CURSOR_P.run(s, values)


# --- messages and tickets ----------------------------------------------------------------
# The per-mail statements are built once, against the tables, and run on the session's
# connection: SQLAlchemy then only binds values (no per-call coercion of the ORM path).

_M, _T, _O = MessageRow.__table__, Ticket.__table__, OutboxRow.__table__  # type: ignore[attr-defined]
_C, _K = MailboxCursor.__table__, TicketCounter.__table__  # type: ignore[attr-defined]
_GET_CURSOR = select(_C.c.uidvalidity, _C.c.last_uid).where(
    _C.c.office_code == bindparam("office"), _C.c.folder == bindparam("box")
)
_MOVE_CURSOR = (
    update(_C)
    .where(_C.c.office_code == bindparam("office"), _C.c.folder == bindparam("box"))
    .values(uidvalidity=bindparam("validity"), last_uid=bindparam("uid"), updated_at=bindparam("now"))
)
_NEW_CURSOR = insert(_C).values(
    office_code=bindparam("office"),
    folder=bindparam("box"),
    uidvalidity=bindparam("validity"),
    last_uid=bindparam("uid"),
    updated_at=bindparam("now"),
)
_MESSAGE_EXISTS = (
    select(_M.c.id)
    .where(_M.c.office_code == bindparam("office"), _M.c.dedupe_key == bindparam("key"))
    .limit(1)
)
_TICKET_COLUMNS = (_T.c.id, _T.c.ref, _T.c.state, _T.c.requester_email)
_TICKET_BY_MESSAGE_IDS = (
    select(*_TICKET_COLUMNS)
    .join(_M, _M.c.ticket_id == _T.c.id)
    .where(_M.c.office_code == bindparam("office"), _M.c.message_id.in_(bindparam("ids", expanding=True)))
    .order_by(_M.c.id.desc())
    .limit(1)
)
_TICKET_BY_REF = select(*_TICKET_COLUMNS).where(_T.c.ref == bindparam("ref"))
_TICKET_BY_CONVERSATION = (
    select(*_TICKET_COLUMNS)
    .where(
        _T.c.office_code == bindparam("office"),
        _T.c.requester_email == bindparam("sender"),
        _T.c.subject_key == bindparam("key"),
        _T.c.last_message_at >= bindparam("since"),
    )
    .order_by(_T.c.id.desc())
    .limit(1)
)
_NEXT_SEQ = (
    update(_K)
    .where(_K.c.office_code == bindparam("office"), _K.c.year == bindparam("yr"))
    .values(last_seq=_K.c.last_seq + 1)
    .returning(_K.c.last_seq)
)
_FIRST_SEQ = insert(_K).values(office_code=bindparam("office"), year=bindparam("yr"), last_seq=1)
_INSERT_TICKET = insert(_T).returning(_T.c.id)
_INSERT_MESSAGE = insert(_M).returning(_M.c.id)
_INSERT_OUTBOX = insert(_O).returning(_O.c.id)
_NOTE_MESSAGE = (
    update(_T)
    .where(_T.c.id == bindparam("ticket"))
    .values(message_count=_T.c.message_count + 1, last_message_at=bindparam("at"))
)
_MARK_SENDING = (
    update(_O).where(_O.c.id == bindparam("outbox"), _O.c.state == "pending").values(state="sending")
)
_MARK_SENT = (
    update(_O)
    .where(_O.c.id == bindparam("outbox"))
    .values(state="sent", sent_at=bindparam("now"), attempts=_O.c.attempts + 1, last_error="")
)

_MOVE_CURSOR_P, _NEW_CURSOR_P = _Prepared(_MOVE_CURSOR), _Prepared(_NEW_CURSOR)
_MESSAGE_EXISTS_P, _TICKET_BY_REF_P = _Prepared(_MESSAGE_EXISTS), _Prepared(_TICKET_BY_REF)
_TICKET_BY_CONVERSATION_P = _Prepared(_TICKET_BY_CONVERSATION)
_NEXT_SEQ_P, _FIRST_SEQ_P = _Prepared(_NEXT_SEQ), _Prepared(_FIRST_SEQ)
_INSERT_TICKET_P, _INSERT_MESSAGE_P = _Prepared(_INSERT_TICKET, _T), _Prepared(_INSERT_MESSAGE, _M)
_INSERT_OUTBOX_P, _NOTE_MESSAGE_P = _Prepared(_INSERT_OUTBOX, _O), _Prepared(_NOTE_MESSAGE)
_MARK_SENDING_P, _MARK_SENT_P = _Prepared(_MARK_SENDING), _Prepared(_MARK_SENT)


def message_exists(s: Session, office: str, dedupe_key: str) -> bool:
    """Whether this office already stored this mail (same Message-ID and content)."""
    return _MESSAGE_EXISTS_P.run(s, {"office": office, "key": dedupe_key}).fetchone() is not None


def ticket_by_message_ids(s: Session, office: str, message_ids: Sequence[str]) -> TicketRef | None:
    """The ticket of the newest stored message (ours or theirs) with one of these Message-IDs."""
    if not message_ids:
        return None
    row = s.connection().execute(_TICKET_BY_MESSAGE_IDS, {"office": office, "ids": list(message_ids)}).first()
    return None if row is None else TicketRef(*row)


def ticket_by_ref(s: Session, ref: str, office: str | None = None) -> TicketRef | None:
    """A ticket by its reference (optionally only within one office)."""
    row = _TICKET_BY_REF_P.run(s, {"ref": ref}).fetchone()
    if row is None or (office is not None and not ref.startswith(f"PST-{office}-")):
        return None
    return TicketRef(*row)


def ticket_by_conversation(
    s: Session, office: str, sender: str, subject_key: str, since: datetime
) -> TicketRef | None:
    """The newest ticket of this sender with this normalised subject active since `since`."""
    values = {"office": office, "sender": sender, "key": subject_key, "since": since}
    row = _TICKET_BY_CONVERSATION_P.run(s, values).fetchone()
    return None if row is None else TicketRef(*row)


def next_ticket_seq(s: Session, office: str, year: int) -> int:
    """Hand out the next sequence number of an office's year (inside the caller's transaction)."""
    done = _NEXT_SEQ_P.run(s, {"office": office, "yr": year}).fetchone()
    if done is not None:
        return int(done[0])
    _FIRST_SEQ_P.run(s, {"office": office, "yr": year})
    return 1


def add_ticket(s: Session, **fields: Any) -> int:
    """Insert a ticket; returns its id."""
    return int(_INSERT_TICKET_P.run(s, fields).fetchone()[0])


def add_message(s: Session, **fields: Any) -> int:
    """Insert a message (in or out); returns its id."""
    return int(_INSERT_MESSAGE_P.run(s, fields).fetchone()[0])


def note_ticket_message(s: Session, ticket_id: int, at: datetime) -> None:
    """Count one more message on a ticket and move its last activity to `at`."""
    _NOTE_MESSAGE_P.run(s, {"ticket": ticket_id, "at": at})


def add_dead_letter(s: Session, **fields: Any) -> bool:
    """Keep a failed mail; False if this (office, folder, uidvalidity, uid) was already kept."""
    exists = s.execute(
        select(col(DeadLetter.id)).where(
            col(DeadLetter.office_code) == fields["office_code"],
            col(DeadLetter.folder) == fields["folder"],
            col(DeadLetter.uidvalidity) == fields["uidvalidity"],
            col(DeadLetter.uid) == fields["uid"],
        )
    ).first()
    if exists is not None:
        return False
    s.execute(insert(DeadLetter).values(**fields))
    return True


# --- outbox ----------------------------------------------------------------------------


def add_outbox(s: Session, **fields: Any) -> int:
    """Queue an outgoing message for delivery; returns the outbox id."""
    return int(_INSERT_OUTBOX_P.run(s, {"state": "pending", **fields}).fetchone()[0])


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
        )
        .join(MessageRow, col(MessageRow.id) == col(OutboxRow.message_pk))
        .outerjoin(Ticket, col(Ticket.id) == col(OutboxRow.ticket_id))
        .where(
            col(OutboxRow.office_code) == office,
            col(OutboxRow.state) == "pending",
            col(OutboxRow.next_attempt_at) <= now,
        )
        .order_by(col(OutboxRow.id))
        .limit(limit)
    ).all()
    return [OutboxItem(*row) for row in rows]


def advance_outbox(conn: Connection, sent_id: int | None, sending_id: int | None, now: datetime) -> None:
    """One commit per mail: record the previous mail `sent` and mark the next one `sending`
    (in flight), so a stop leaves at most one mail per sender whose fate is unknown. Takes a
    bare connection (storage.db.statements): it runs once per mail sent."""
    if sent_id is not None:
        _MARK_SENT_P.run(conn, {"outbox": sent_id, "now": now})
    if sending_id is not None:
        _MARK_SENDING_P.run(conn, {"outbox": sending_id})


def release_interrupted(s: Session, office: str) -> int:
    """Put back mails a stopped process left `sending` (they are sent again); returns how many."""
    done = s.execute(
        update(OutboxRow)
        .where(col(OutboxRow.office_code) == office, col(OutboxRow.state) == "sending")
        .values(state="pending")
    )
    return _rowcount(done)


def mark_sent(s: Session, outbox_id: int, now: datetime) -> None:
    s.connection().execute(_MARK_SENT, {"outbox": outbox_id, "now": now})


def mark_retry(s: Session, outbox_id: int, error: str, next_attempt_at: datetime) -> None:
    s.execute(
        update(OutboxRow)
        .where(col(OutboxRow.id) == outbox_id)
        .values(
            state="pending",
            attempts=col(OutboxRow.attempts) + 1,
            last_error=error,
            next_attempt_at=next_attempt_at,
        )
    )


def mark_failed(s: Session, outbox_id: int, error: str) -> None:
    s.execute(
        update(OutboxRow)
        .where(col(OutboxRow.id) == outbox_id)
        .values(state="failed", attempts=col(OutboxRow.attempts) + 1, last_error=error)
    )


def next_outbox_due(s: Session, office: str) -> datetime | None:
    """When the earliest pending mail of an office is due, or None."""
    value = s.execute(
        select(func.min(col(OutboxRow.next_attempt_at))).where(
            col(OutboxRow.office_code) == office,
            col(OutboxRow.state) == "pending",
        )
    ).scalar()
    return value


# --- reading for people ------------------------------------------------------------------


def list_tickets(
    s: Session, office: str | None = None, state: str | None = None, limit: int = 200
) -> list[Ticket]:
    """Tickets, newest first, optionally of one office and/or one state."""
    query = select(Ticket).order_by(col(Ticket.id).desc()).limit(limit)
    if office:
        query = query.where(col(Ticket.office_code) == office)
    if state:
        query = query.where(col(Ticket.state) == state)
    return list(s.execute(query).scalars())


def ticket_with_messages(
    s: Session, ref: str
) -> tuple[Ticket, list[tuple[MessageRow, OutboxRow | None]]] | None:
    """A ticket and its messages in order, each outgoing one with its delivery state."""
    ticket = s.execute(select(Ticket).where(col(Ticket.ref) == ref)).scalar_one_or_none()
    if ticket is None:
        return None
    rows = s.execute(
        select(MessageRow, OutboxRow)
        .outerjoin(OutboxRow, col(OutboxRow.message_pk) == col(MessageRow.id))
        .where(col(MessageRow.ticket_id) == ticket.id)
        .order_by(col(MessageRow.id))
    ).all()
    return ticket, [(m, o) for m, o in rows]


def counts(s: Session) -> dict[str, int]:
    """Row counts for a status line: tickets, messages, outbox by state, dead letters."""
    result = {
        "tickets": s.execute(select(func.count()).select_from(Ticket)).scalar_one(),
        "messages": s.execute(select(func.count()).select_from(MessageRow)).scalar_one(),
        "dead_letters": s.execute(select(func.count()).select_from(DeadLetter)).scalar_one(),
    }
    for state, n in s.execute(select(col(OutboxRow.state), func.count()).group_by(col(OutboxRow.state))):
        result[f"outbox_{state}"] = n
    return result
