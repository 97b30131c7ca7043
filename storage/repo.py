"""Every query of the project. Functions take a Session (from storage.db) and plain values.

The per-mail hot path runs statements built once against the tables (Core, not the ORM):
the same tables and SQL, about half the CPU per mail.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    Result,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    true,
    update,
)
from sqlmodel import Session, col

from storage.tables import (
    AddressFlag,
    AttachmentRow,
    DeadLetter,
    DigestRow,
    EarlyAnswer,
    MailboxCursor,
    MessageRow,
    OfficeRow,
    OutboxRow,
    Rating,
    ReportDelivery,
    Ticket,
    TicketCounter,
    TicketEvent,
    TicketLink,
    TicketNotice,
    TicketParticipant,
    UTCDateTime,
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
    quiet_after: datetime | None  # from then on it waits out the night (mailer/quiet.py)


class _Prepared:
    """A hot statement compiled once per dialect and run on the DBAPI cursor of the session's
    connection, inside its transaction. SQLAlchemy's per-call work (cache key, parameter set-up,
    result wrapping) was about a third of the CPU of storing a mail; this keeps the same SQL and
    the same conversions (each parameter through its type's bind processor for the dialect,
    e.g. UTCDateTime then SQLite's datetime-to-text: tests/test_storage.py compares the stored rows).
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
            name: (bind.type.dialect_impl(dialect).bind_processor(dialect), bind.effective_value)
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
_A = AttachmentRow.__table__  # type: ignore[attr-defined]
_F = AddressFlag.__table__  # type: ignore[attr-defined]
_INSERT_ATTACHMENTS = insert(_A)
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
_TICKET_BY_REF = select(*_TICKET_COLUMNS).where(_T.c.ref == bindparam("ref"))
_TICKETS_BY_CONVERSATION = (
    select(*_TICKET_COLUMNS)
    .where(
        _T.c.office_code == bindparam("office"),
        _T.c.requester_email == bindparam("sender"),
        _T.c.subject_key == bindparam("key"),
        _T.c.last_message_at >= bindparam("since"),
    )
    .order_by(_T.c.id.desc())
    .limit(bindparam("limit"))
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
# A ticket an officer settled as not to be answered: no more automatic mail to its requester.
NOT_TO_ANSWER = ("spam", "duplicate")
# The claim of the next mail re-checks, in the same statement, what may have changed since it
# was queued: a flag on its recipient (bouncing, complained), and for a mail to a ticket's
# requester the ticket settled as spam or duplicate (two primary-key lookups).
_CLAIM = (
    update(_O)
    .where(
        _O.c.id == bindparam("outbox"),
        _O.c.state == "pending",
        ~exists().where(_F.c.office_code == _O.c.office_code, _F.c.address == _O.c.envelope_to),
        ~exists().where(
            _T.c.id == _O.c.ticket_id,
            _T.c.requester_email == _O.c.envelope_to,
            or_(*(_T.c.resolution == value for value in NOT_TO_ANSWER)),  # no IN: compiled once
        ),
    )
    .values(state="sending")
)
_MARK_SENT = (
    update(_O)
    .where(_O.c.id == bindparam("outbox"))
    .values(state="sent", sent_at=bindparam("now"), attempts=_O.c.attempts + 1, last_error="")
)

_MOVE_CURSOR_P, _NEW_CURSOR_P = _Prepared(_MOVE_CURSOR), _Prepared(_NEW_CURSOR)
_MESSAGE_EXISTS_P, _TICKET_BY_REF_P = _Prepared(_MESSAGE_EXISTS), _Prepared(_TICKET_BY_REF)

_NEXT_SEQ_P, _FIRST_SEQ_P = _Prepared(_NEXT_SEQ), _Prepared(_FIRST_SEQ)
_INSERT_TICKET_P, _INSERT_MESSAGE_P = _Prepared(_INSERT_TICKET, _T), _Prepared(_INSERT_MESSAGE, _M)
_INSERT_OUTBOX_P, _NOTE_MESSAGE_P = _Prepared(_INSERT_OUTBOX, _O), _Prepared(_NOTE_MESSAGE)
_CLAIM_P, _MARK_SENT_P = _Prepared(_CLAIM), _Prepared(_MARK_SENT)


def message_exists(s: Session, office: str, dedupe_key: str) -> bool:
    """Whether this office already stored this mail (same Message-ID and content)."""
    return _MESSAGE_EXISTS_P.run(s, {"office": office, "key": dedupe_key}).fetchone() is not None


def ticket_by_ref(s: Session, ref: str, office: str | None = None) -> TicketRef | None:
    """A ticket by its reference (optionally only within one office)."""
    row = _TICKET_BY_REF_P.run(s, {"ref": ref}).fetchone()
    if row is None or (office is not None and not ref.startswith(f"PST-{office}-")):
        return None
    return TicketRef(*row)


def tickets_by_conversation(
    s: Session, office: str, sender: str, subject_key: str, since: datetime, limit: int = 10
) -> list[TicketRef]:
    """The tickets of this sender with this normalised subject active since `since`, newest first."""
    values = {"office": office, "sender": sender, "key": subject_key, "since": since, "limit": limit}
    return [TicketRef(*row) for row in s.connection().execute(_TICKETS_BY_CONVERSATION, values)]


class ReferenceHit(NamedTuple):
    """The ticket a mail's In-Reply-To/References point at, and whether through one of our own
    outgoing Message-IDs (direction 'out': unguessable, so trusted whoever writes)."""

    ticket: TicketRef
    ours: bool


_REFERENCED = (
    select(*_TICKET_COLUMNS, _M.c.direction)
    .join(_M, _M.c.ticket_id == _T.c.id)
    .where(_M.c.office_code == bindparam("office"), _M.c.message_id.in_(bindparam("ids", expanding=True)))
    .order_by(_M.c.id.desc())
    .limit(50)
)
_P = TicketParticipant.__table__  # type: ignore[attr-defined]
_PARTICIPANTS = select(_P.c.email, _P.c.role).where(_P.c.ticket_id == bindparam("ticket"))
_INSERT_PARTICIPANTS = insert(_P)
_TICKET_BY_CONVERSATION_INDEX = (
    select(*_TICKET_COLUMNS)
    .join(_M, _M.c.ticket_id == _T.c.id)
    .where(_M.c.office_code == bindparam("office"), _M.c.conversation_index == bindparam("index"))
    .order_by(_M.c.id.desc())
    .limit(1)
)


def referenced_ticket(s: Session, office: str, message_ids: Sequence[str]) -> ReferenceHit | None:
    """The ticket of the newest stored message with one of these Message-IDs, preferring our
    own outgoing ones (a reply to our mail is ours whatever else it cites)."""
    if not message_ids:
        return None
    rows = s.connection().execute(_REFERENCED, {"office": office, "ids": list(message_ids)}).all()
    for row in rows:
        if row[4] == "out":
            return ReferenceHit(TicketRef(*row[:4]), True)
    return ReferenceHit(TicketRef(*rows[0][:4]), False) if rows else None


def ticket_by_conversation_index(s: Session, office: str, index: str) -> TicketRef | None:
    """The ticket of the newest message of the office with this Outlook conversation index."""
    row = s.connection().execute(_TICKET_BY_CONVERSATION_INDEX, {"office": office, "index": index}).first()
    return None if row is None else TicketRef(*row)


def ticket_texts(s: Session, ticket_ids: Sequence[int], limit: int = 200) -> list[tuple[int, str]]:
    """[(ticket id, body text)] of the incoming mails of these tickets, newest first."""
    rows = s.execute(
        select(col(MessageRow.ticket_id), col(MessageRow.body_text))
        .where(col(MessageRow.ticket_id).in_(list(ticket_ids)), col(MessageRow.direction) == "in")
        .order_by(col(MessageRow.id).desc())
        .limit(limit)
    )
    return [(int(t), text) for t, text in rows]


def ticket_participants(s: Session, ticket_id: int) -> dict[str, str]:
    """The people on a ticket: {email: role} (role: requester | cc | staff)."""
    return {email: role for email, role in s.connection().execute(_PARTICIPANTS, {"ticket": ticket_id})}


def add_participants(
    s: Session, ticket_id: int, people: dict[str, str], at: datetime, known: Iterable[str] = ()
) -> None:
    """Put people ({email: role}) on a ticket; `known` are already on it and skipped."""
    skip = set(known)
    rows = [
        {"ticket_id": ticket_id, "email": email, "role": role, "added_at": at}
        for email, role in people.items()
        if email and email not in skip
    ]
    if rows:
        s.connection().execute(_INSERT_PARTICIPANTS, rows)


def add_staff(s: Session, ticket_id: int, email: str, at: datetime) -> None:
    """Put an officer on a ticket (their mails then continue it); an existing entry becomes staff."""
    email = email.strip().lower()
    known = ticket_participants(s, ticket_id)
    if email in known:
        s.execute(
            update(TicketParticipant)
            .where(col(TicketParticipant.ticket_id) == ticket_id, col(TicketParticipant.email) == email)
            .values(role="staff")
        )
    else:
        add_participants(s, ticket_id, {email: "staff"}, at)


def link_tickets(s: Session, ticket_id: int, linked_ticket_id: int, reason: str, at: datetime) -> None:
    """Record that ticket `ticket_id` was opened from a mail pointing at `linked_ticket_id`."""
    s.execute(
        insert(TicketLink).values(
            ticket_id=ticket_id, linked_ticket_id=linked_ticket_id, reason=reason, created_at=at
        )
    )


def linked_ticket_of(s: Session, linked_ticket_id: int, requester: str) -> TicketRef | None:
    """The newest open (not closed) ticket of `requester` that was opened from `linked_ticket_id`."""
    row = s.execute(
        select(col(Ticket.id), col(Ticket.ref), col(Ticket.state), col(Ticket.requester_email))
        .join(TicketLink, col(TicketLink.ticket_id) == col(Ticket.id))
        .where(
            col(TicketLink.linked_ticket_id) == linked_ticket_id,
            col(Ticket.requester_email) == requester,
            col(Ticket.state) != "closed",
        )
        .order_by(col(Ticket.id).desc())
        .limit(1)
    ).first()
    return None if row is None else TicketRef(*row)


def ticket_links(s: Session, ticket_id: int) -> list[tuple[str, str, str]]:
    """Links of a ticket both ways: [(direction, other ref, reason)], direction "from" when this
    ticket was opened from the other one, "to" when the other was opened from this one."""
    out = s.execute(
        select(col(Ticket.ref), col(TicketLink.reason))
        .join(TicketLink, col(TicketLink.linked_ticket_id) == col(Ticket.id))
        .where(col(TicketLink.ticket_id) == ticket_id)
        .order_by(col(TicketLink.id))
    ).all()
    back = s.execute(
        select(col(Ticket.ref), col(TicketLink.reason))
        .join(TicketLink, col(TicketLink.ticket_id) == col(Ticket.id))
        .where(col(TicketLink.linked_ticket_id) == ticket_id)
        .order_by(col(TicketLink.id))
    ).all()
    return [("from", ref, reason) for ref, reason in out] + [("to", ref, reason) for ref, reason in back]


def ticket_closed_at(s: Session, ticket_id: int) -> datetime | None:
    """When a closed ticket was closed (its last mail's time if the closing did not say)."""
    row = s.execute(
        select(col(Ticket.closed_at), col(Ticket.last_message_at)).where(col(Ticket.id) == ticket_id)
    ).first()
    return None if row is None else row[0] or row[1]


def close_ticket(s: Session, ticket_id: int, at: datetime) -> None:
    """Set a ticket closed as of `at` (and put its text in the search index)."""
    s.execute(update(Ticket).where(col(Ticket.id) == ticket_id).values(state="closed", closed_at=at))
    index_ticket_text(s, ticket_id)


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


def add_attachments(s: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert a message's attachment rows (keys: the columns of AttachmentRow but id) at once."""
    if rows:
        s.connection().execute(_INSERT_ATTACHMENTS, list(rows))


def note_ticket_message(s: Session, ticket_id: int, at: datetime) -> None:
    """Count one more message on a ticket and move its last activity to `at`."""
    _NOTE_MESSAGE_P.run(s, {"ticket": ticket_id, "at": at})


def change_ticket(
    s: Session,
    ticket_id: int,
    *,
    state: str,
    at: datetime,
    resolution: str | None = None,
    due_at: datetime | None = None,
    officer: str | None = None,
    first_response: bool = False,
    fresh_clock: bool = False,
) -> None:
    """Move a ticket to `state` (at `at`); optionally set its resolution, give it a new `due_at`
    (`fresh_clock`: a new round of the clock, whose notices start again from the reminder),
    note the officer who handled it and, if it has none yet, its first response."""
    values: dict[str, Any] = {"state": state, "state_changed_at": at}
    if fresh_clock:
        values["clock_round"] = col(Ticket.clock_round) + 1
    if state == "closed":
        values["closed_at"] = at  # the reopen window counts from here
    if resolution is not None:
        values["resolution"] = resolution
    if due_at is not None:
        values["due_at"] = due_at
    if officer is not None:
        values["last_officer"] = officer
    s.execute(update(Ticket).where(col(Ticket.id) == ticket_id).values(**values))
    if state == "closed":
        index_ticket_text(s, ticket_id)
    if first_response and officer is not None:
        s.execute(
            update(Ticket)
            .where(col(Ticket.id) == ticket_id, col(Ticket.first_response_at).is_(None))
            .values(first_response_at=at, first_response_by=officer)
        )


def add_ticket_event(s: Session, **fields: Any) -> None:
    """Record one change of a ticket (ticket_id, message_pk, at, event, state, actor, detail)."""
    s.execute(insert(TicketEvent).values(**fields))


def ticket_clock(s: Session, ticket_id: int) -> tuple[datetime, list[tuple[datetime, str, str]]]:
    """A ticket's receipt time and its history as (at, event, state after), oldest first: what
    the SLA clock is computed from (lifecycle.clock_basis)."""
    received = s.execute(select(col(Ticket.received_at)).where(col(Ticket.id) == ticket_id)).scalar_one()
    rows = s.execute(
        select(col(TicketEvent.at), col(TicketEvent.event), col(TicketEvent.state))
        .where(col(TicketEvent.ticket_id) == ticket_id)
        .order_by(col(TicketEvent.id))
    ).all()
    return received, [(at, event, state) for at, event, state in rows]


def ticket_events(s: Session, ticket_id: int) -> list[TicketEvent]:
    """A ticket's history, oldest first."""
    query = select(TicketEvent).where(col(TicketEvent.ticket_id) == ticket_id).order_by(col(TicketEvent.id))
    return list(s.execute(query).scalars())


def add_dead_letter(s: Session, **fields: Any) -> bool:
    """Keep a failed mail; False if this (office, folder, uidvalidity, uid) was already kept:
    then the kept row takes the newest step and reason (a retry that failed again)."""
    exists = s.execute(
        select(col(DeadLetter.id)).where(
            col(DeadLetter.office_code) == fields["office_code"],
            col(DeadLetter.folder) == fields["folder"],
            col(DeadLetter.uidvalidity) == fields["uidvalidity"],
            col(DeadLetter.uid) == fields["uid"],
        )
    ).first()
    if exists is not None:
        s.execute(
            update(DeadLetter)
            .where(col(DeadLetter.id) == exists[0])
            .values(step=fields["step"], error=fields["error"])
        )
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
            col(OutboxRow.quiet_after),
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


def advance_outbox(conn: Connection, sent_id: int | None, sending_id: int | None, now: datetime) -> bool:
    """One commit per mail: record the previous mail `sent` and mark the next one `sending`
    (in flight), so a stop leaves at most one mail per sender whose fate is unknown. Takes a
    bare connection (storage.db.statements): it runs once per mail sent. Returns whether
    `sending_id` was claimed: not when it is no longer pending, its recipient is flagged, or it
    goes to the requester of a ticket settled as spam or duplicate (see outbox_hindrance)."""
    if sent_id is not None:
        _MARK_SENT_P.run(conn, {"outbox": sent_id, "now": now})
    if sending_id is None:
        return False
    return int(_CLAIM_P.run(conn, {"outbox": sending_id}).rowcount) == 1


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
        .where(_O.c.id == outbox_id, _O.c.state == "pending")
        .values(state="suppressed", last_error=reason)
    )
    return int(done.rowcount) == 1


def hold_outbox(conn: Connection, outbox_id: int, until: datetime) -> None:
    """Keep a pending mail for later: due again at `until` (the end of the quiet hours)."""
    conn.execute(
        update(_O).where(_O.c.id == outbox_id, _O.c.state == "pending").values(next_attempt_at=until)
    )


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


def mark_failed(s: Session, outbox_id: int, error: str, now: datetime) -> None:
    s.execute(
        update(OutboxRow)
        .where(col(OutboxRow.id) == outbox_id)
        .values(state="failed", attempts=col(OutboxRow.attempts) + 1, last_error=error, failed_at=now)
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


def attachments_of(s: Session, message_pks: Sequence[int]) -> dict[int, list[AttachmentRow]]:
    """{message id: its attachment rows in order, without their bytes} for these messages."""
    if not message_pks:
        return {}
    columns = [c for c in _A.c if c.name != "content"]
    rows = s.connection().execute(
        select(*columns)
        .where(_A.c.message_pk.in_(list(message_pks)))
        .order_by(_A.c.message_pk, _A.c.position)
    )
    found: dict[int, list[AttachmentRow]] = {}
    for row in rows:
        found.setdefault(row.message_pk, []).append(AttachmentRow(**row._mapping))
    return found


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


# --- loops and abuse: reports about our mail, flagged addresses, the acknowledgement limit -----


class OutgoingRef(NamedTuple):
    """One mail we sent: its messages.id, the ticket it belongs to (or None), its recipients
    (the outbox envelope; the stored To/Cc for a mail sent by other means)."""

    message_pk: int
    ticket: TicketRef | None
    recipients: tuple[str, ...]


def _outgoing(s: Session, where: Any) -> OutgoingRef | None:
    row = s.execute(
        select(col(MessageRow.id), col(OutboxRow.envelope_to), col(MessageRow.to_emails), *_TICKET_COLUMNS)
        .join(OutboxRow, col(OutboxRow.message_pk) == col(MessageRow.id), isouter=True)
        .join(_T, _T.c.id == col(MessageRow.ticket_id), isouter=True)
        .where(col(MessageRow.direction) == "out", where)
        .order_by(col(MessageRow.id).desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    ticket = TicketRef(*row[3:]) if row[3] is not None else None
    recipients = (row[1],) if row[1] else tuple(a.strip() for a in str(row[2]).split(",") if a.strip())
    return OutgoingRef(int(row[0]), ticket, recipients)


def outgoing_by_message_id(s: Session, office: str, message_id: str) -> OutgoingRef | None:
    """The mail this office sent with this Message-ID (without brackets), or None."""
    return _outgoing(s, (col(MessageRow.office_code) == office) & (col(MessageRow.message_id) == message_id))


def latest_outgoing_to(s: Session, office: str, address: str, since: datetime) -> OutgoingRef | None:
    """The newest mail this office queued for `address` since `since`, or None."""
    return _outgoing(
        s,
        (col(OutboxRow.office_code) == office)
        & (col(OutboxRow.envelope_to) == address)
        & (col(OutboxRow.created_at) >= since),
    )


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


def count_mail_to(s: Session, office: str, address: str, since: datetime, kinds: Sequence[str]) -> int:
    """How many mails of these kinds (e.g. "ack") this office queued for `address` since `since`
    (index ix_outbox_office_to_created; rows of this transaction included)."""
    values = {"office": office, "address": address, "since": since, "kinds": list(kinds)}
    return int(s.connection().execute(_COUNT_MAIL_TO, values).scalar_one())


class Flag(NamedTuple):
    """A flagged address of an office: (flag, since, reason, ticket_id)."""

    flag: str
    since: datetime
    reason: str
    ticket_id: int | None


_GET_FLAG = select(_F.c.flag, _F.c.since, _F.c.reason, _F.c.ticket_id).where(
    _F.c.office_code == bindparam("office"), _F.c.address == bindparam("address")
)


_CLEAR_FLAG = delete(_F).where(
    _F.c.office_code == bindparam("office"),
    _F.c.address == bindparam("address"),
    _F.c.flag == bindparam("flag"),
)
_CLEAR_FLAG_P = _Prepared(_CLEAR_FLAG)  # run for every person's mail: the hot path


def address_flag(s: Session, office: str, address: str) -> Flag | None:
    """The flag on an address for an office (bouncing, complained), or None."""
    row = s.connection().execute(_GET_FLAG, {"office": office, "address": address}).first()
    return None if row is None else Flag(*row)


def flag_address(
    s: Session, office: str, address: str, flag: str, since: datetime, reason: str, ticket_id: int | None
) -> bool:
    """Flag an address (`bouncing` or `complained`); a complaint is never downgraded to a
    bounce. Returns False when the address already had this flag (or a complaint)."""
    values = {"flag": flag, "since": since, "reason": reason, "ticket_id": ticket_id}
    old = address_flag(s, office, address)
    conn = s.connection()
    if old is None:
        conn.execute(insert(_F).values(office_code=office, address=address, **values))
        return True
    if old.flag == flag or old.flag == "complained":
        return False
    conn.execute(update(_F).where(_F.c.office_code == office, _F.c.address == address).values(**values))
    return True


def clear_address_flag(s: Session, office: str, address: str, flag: str) -> bool:
    """Lift a flag of this kind from an address; returns whether there was one."""
    values = {"office": office, "address": address, "flag": flag}
    return int(_CLEAR_FLAG_P.run(s, values).rowcount) > 0


def address_flags(s: Session, office: str | None = None) -> dict[tuple[str, str], AddressFlag]:
    """Every flagged address, {(office, address): flag row}, optionally of one office."""
    query = select(AddressFlag)
    if office:
        query = query.where(col(AddressFlag.office_code) == office)
    return {(f.office_code, f.address): f for f in s.execute(query).scalars()}


# --- full-text search of past consultations ---------------------------------------------
# The index (migration 0010) is an FTS5 table on SQLite and a tsvector table on PostgreSQL; a
# ticket's subject and what the people wrote (requests, follow-ups, officers' answers) are
# indexed when it closes.

SEARCHED_KINDS = ("request", "followup", "staff_answer", "staff_note")
_MAX_INDEXED_CHARS = 20_000  # per message: enough for any answer, bounded for pasted tables


class SearchHit(NamedTuple):
    ref: str
    office_code: str
    state: str
    closed_at: datetime | None
    subject: str
    snippet: str


def index_ticket_text(s: Session, ticket_id: int) -> None:
    """(Re)index one ticket's text for `search_tickets`."""
    subject = s.execute(select(col(Ticket.subject)).where(col(Ticket.id) == ticket_id)).scalar_one()
    bodies = s.execute(
        select(col(MessageRow.body_trimmed))  # what each person wrote, without the quoted history
        .where(col(MessageRow.ticket_id) == ticket_id, col(MessageRow.kind).in_(SEARCHED_KINDS))
        .order_by(col(MessageRow.id))
    ).scalars()
    values = {
        "id": ticket_id,
        "subject": subject,
        "body": "\n\n".join(b[:_MAX_INDEXED_CHARS] for b in bodies),
    }
    conn = s.connection()
    if conn.dialect.name == "sqlite":
        conn.execute(text("DELETE FROM ticket_search WHERE rowid = :id"), values)
        conn.execute(
            text("INSERT INTO ticket_search (rowid, subject, body) VALUES (:id, :subject, :body)"), values
        )
    else:
        conn.execute(
            text(
                "INSERT INTO ticket_search (ticket_id, subject, body) VALUES (:id, :subject, :body) "
                "ON CONFLICT (ticket_id) DO UPDATE SET subject = excluded.subject, body = excluded.body"
            ),
            values,
        )


def search_tickets(s: Session, words: str, office: str | None = None, limit: int = 20) -> list[SearchHit]:
    """Closed tickets whose subject or text has every word (as a word or the start of one),
    best first (BM25 on SQLite, ts_rank_cd on PostgreSQL; a subject match weighs more)."""
    terms = re.findall(r"\w+", words.casefold())
    if not terms:
        return []
    conn = s.connection()
    where = "t.state = 'closed'" + (" AND t.office_code = :office" if office else "")
    if conn.dialect.name == "sqlite":
        sql = (
            "SELECT t.ref, t.office_code, t.state, t.closed_at, t.subject,"
            " snippet(ticket_search, 1, '[', ']', '…', 12)"
            " FROM ticket_search JOIN tickets t ON t.id = ticket_search.rowid"
            f" WHERE ticket_search MATCH :q AND {where}"
            " ORDER BY bm25(ticket_search, 4.0, 1.0) LIMIT :n"
        )
        query = " ".join(f'"{term}"*' for term in terms)
    else:
        sql = (
            "SELECT t.ref, t.office_code, t.state, t.closed_at, t.subject,"
            " ts_headline('simple', ts.body, q, 'StartSel=[, StopSel=], MaxWords=20, MinWords=8')"
            " FROM ticket_search ts JOIN tickets t ON t.id = ts.ticket_id,"
            " to_tsquery('simple', :q) q"
            f" WHERE ts.document @@ q AND {where}"
            " ORDER BY ts_rank_cd(ts.document, q) DESC, t.id DESC LIMIT :n"
        )
        query = " & ".join(f"{term}:*" for term in terms)
    typed = text(sql).columns(closed_at=UTCDateTime())
    rows = conn.execute(typed, {"q": query, "office": office, "n": limit}).all()
    return [SearchHit(r[0], r[1], r[2], r[3], r[4], " ".join(str(r[5]).split())) for r in rows]


# --- the sweep: reminders, escalation, digests -------------------------------------------------
# Open tickets are read by deadline (index ix_tickets_state_due). A "group" is (office codes,
# cutoff): the offices whose calendars put the same cutoff on this sweep.


class DueTicket(NamedTuple):
    """An open ticket as notices and digests show it."""

    id: int
    ref: str
    office_code: str
    requester_email: str
    requester_name: str
    subject: str
    received_at: datetime
    due_at: datetime
    last_officer: str
    clock_round: int


_N, _D = TicketNotice.__table__, DigestRow.__table__  # type: ignore[attr-defined]
_DUE_COLUMNS = (
    _T.c.id, _T.c.ref, _T.c.office_code, _T.c.requester_email, _T.c.requester_name, _T.c.subject,
    _T.c.received_at, _T.c.due_at, _T.c.last_officer, _T.c.clock_round,
)  # fmt: skip


def _by_cutoff(groups: Sequence[tuple[Sequence[str], datetime]]) -> Any:
    """Open tickets whose office is in a group and whose deadline is at or before its cutoff."""
    return and_(
        _T.c.state == "open",
        or_(*(and_(_T.c.office_code.in_(list(codes)), _T.c.due_at <= cutoff) for codes, cutoff in groups)),
    )


def notice_candidates(
    s: Session,
    level: int,
    groups: Sequence[tuple[Sequence[str], datetime]],
    after: datetime | None = None,
    limit: int = 10_000,
) -> list[DueTicket]:
    """Open tickets that reached `level` (deadline at or before their group's cutoff; after
    `after` when given) and have no notice of that level in their clock's current round yet,
    earliest deadline first."""
    if not groups:
        return []
    noticed = exists().where(
        _N.c.ticket_id == _T.c.id, _N.c.clock_round == _T.c.clock_round, _N.c.level == level
    )
    query = select(*_DUE_COLUMNS).where(_by_cutoff(groups), ~noticed)
    if after is not None:
        query = query.where(_T.c.due_at > after)
    rows = s.connection().execute(query.order_by(_T.c.due_at, _T.c.id).limit(limit))
    return [DueTicket._make(row) for row in rows]


def add_notices(s: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Record notices (ticket_id, clock_round, level, recipient, outbox_id, due_at, created_at);
    the unique (ticket, round, level) makes a second one fail the caller's transaction."""
    if rows:
        s.connection().execute(insert(_N), list(rows))


class NoticeSent(NamedTuple):
    """A notice about a ticket, as `mailer show` lists it."""

    clock_round: int
    level: int
    recipient: str
    due_at: datetime  # the deadline it was about
    created_at: datetime


def notices_of(s: Session, ticket_id: int) -> list[NoticeSent]:
    """The notices sent about a ticket, by round and level."""
    rows = s.connection().execute(
        select(_N.c.clock_round, _N.c.level, _N.c.recipient, _N.c.due_at, _N.c.created_at)
        .where(_N.c.ticket_id == ticket_id)
        .order_by(_N.c.clock_round, _N.c.level)
    )
    return [NoticeSent(int(r), int(level), str(who), due, at) for r, level, who, due, at in rows]


def digest_done(s: Session, manager: str, day: str) -> bool:
    """Whether the manager's digest of this local day was already sent (or found empty)."""
    query = select(_D.c.id).where(_D.c.manager == manager, _D.c.day == day)
    return s.connection().execute(query).first() is not None


def digests_done(s: Session, days: Iterable[str]) -> set[tuple[str, str]]:
    """The (manager, day) of every digest already sent or found empty on these local days."""
    query = select(_D.c.manager, _D.c.day).where(_D.c.day.in_(list(days)))
    return {(str(m), str(d)) for m, d in s.connection().execute(query)}


def add_digest(
    s: Session, manager: str, day: str, tickets: int, outbox_id: int | None, now: datetime
) -> None:
    """Record a manager's digest of a day (unique per manager and day)."""
    values = {"manager": manager, "day": day, "tickets": tickets, "outbox_id": outbox_id, "created_at": now}
    s.connection().execute(insert(_D).values(**values))


def digest_counts(
    s: Session, groups: Sequence[tuple[Sequence[str], datetime]], now: datetime
) -> dict[str, tuple[int, int]]:
    """Per office, (overdue, due later today) among open tickets due by the group's cutoff (the
    end of the office's day): {office_code: (overdue, due_today)}."""
    if not groups:
        return {}
    overdue = func.sum(case((_T.c.due_at <= now, 1), else_=0))
    query = (
        select(_T.c.office_code, overdue, func.count()).where(_by_cutoff(groups)).group_by(_T.c.office_code)
    )
    return {code: (int(late), int(total) - int(late)) for code, late, total in s.connection().execute(query)}


def digest_tickets(
    s: Session, groups: Sequence[tuple[Sequence[str], datetime]], per_office: int
) -> list[DueTicket]:
    """The first `per_office` open tickets of each office due by the group's cutoff, earliest
    deadline first within an office."""
    if not groups:
        return []
    rank = (
        func.row_number().over(partition_by=_T.c.office_code, order_by=(_T.c.due_at, _T.c.id)).label("rank")
    )
    inner = select(*_DUE_COLUMNS, rank).where(_by_cutoff(groups)).subquery()
    query = select(*(inner.c[c.name] for c in _DUE_COLUMNS)).where(inner.c.rank <= per_office)
    rows = s.connection().execute(query.order_by(inner.c.office_code, inner.c.due_at, inner.c.id))
    return [DueTicket(*row) for row in rows]


_EXCERPT_SOURCE_CHARS = 2000


def request_texts(s: Session, ticket_ids: Sequence[int]) -> dict[int, str]:
    """The start (2,000 characters) of the newest request or follow-up of each ticket, for the
    one-line excerpts of notices and digests: {ticket_id: text}."""
    if not ticket_ids:
        return {}
    newest = (
        select(func.max(_M.c.id))
        .where(
            _M.c.ticket_id.in_(list(ticket_ids)),
            _M.c.direction == "in",
            _M.c.kind.in_(("request", "followup")),
        )
        .group_by(_M.c.ticket_id)
    )
    head = func.substr(_M.c.body_text, 1, _EXCERPT_SOURCE_CHARS)  # an excerpt needs only the start
    rows = s.connection().execute(select(_M.c.ticket_id, head).where(_M.c.id.in_(newest)))
    return {int(ticket): str(text) for ticket, text in rows}


# --- after the answer: closing quiet tickets, ratings, the monthly report ------------------


class QuietTicket(NamedTuple):
    """An answered ticket nobody wrote on since `cutoff`: what its closing mail needs."""

    id: int
    ref: str
    requester_email: str
    requester_name: str
    subject: str
    language: str
    kind: str
    resolution: str  # answered | thanks | spam | duplicate | closed


def quiet_answered_tickets(s: Session, office: str, cutoff: datetime, limit: int = 100) -> list[QuietTicket]:
    """Up to `limit` tickets of an office answered, with no state change and no mail since `cutoff`."""
    rows = s.execute(
        select(
            col(Ticket.id),
            col(Ticket.ref),
            col(Ticket.requester_email),
            col(Ticket.requester_name),
            col(Ticket.subject),
            col(Ticket.language),
            col(Ticket.kind),
            col(Ticket.resolution),
        )
        .where(
            col(Ticket.office_code) == office,
            col(Ticket.state) == "answered",
            col(Ticket.state_changed_at) <= cutoff,
            col(Ticket.last_message_at) <= cutoff,
        )
        .order_by(col(Ticket.id))
        .limit(limit)
    ).all()
    return [QuietTicket(*row) for row in rows]


def close_quiet_ticket(s: Session, ticket_id: int, at: datetime, cutoff: datetime) -> bool:
    """Close a ticket if it is still answered and quiet since `cutoff` (a reply may have come in
    since it was listed); its resolution is kept. Returns whether it was closed."""
    done = s.execute(
        update(Ticket)
        .where(
            col(Ticket.id) == ticket_id,
            col(Ticket.state) == "answered",
            col(Ticket.state_changed_at) <= cutoff,
            col(Ticket.last_message_at) <= cutoff,
        )
        .values(state="closed", state_changed_at=at, closed_at=at)
    )
    return _rowcount(done) == 1


def ticket_message_ids(s: Session, ticket_id: int) -> list[str]:
    """The Message-IDs of a ticket's mails, oldest first (a reply's References)."""
    rows = s.execute(
        select(col(MessageRow.message_id))
        .where(col(MessageRow.ticket_id) == ticket_id, col(MessageRow.message_id).is_not(None))
        .order_by(col(MessageRow.id))
    ).scalars()
    return [str(m) for m in rows]


def latest_outlook_mail(s: Session, ticket_id: int) -> bytes | None:
    """The raw bytes of the newest mail received on a ticket that carried Outlook's
    Thread-Index (a reply of ours continues its conversation), or None."""
    raw = s.execute(
        select(col(MessageRow.raw))
        .where(
            col(MessageRow.ticket_id) == ticket_id,
            col(MessageRow.direction) == "in",
            col(MessageRow.conversation_index).is_not(None),
        )
        .order_by(col(MessageRow.id).desc())
        .limit(1)
    ).scalar()
    return None if raw is None else bytes(raw)


def ticket_kind(s: Session, ticket_id: int) -> str:
    """request | complaint."""
    return str(s.execute(select(col(Ticket.kind)).where(col(Ticket.id) == ticket_id)).scalar_one())


class ComplaintFacts(NamedTuple):
    """What a complaint inside a conversation needs of its ticket."""

    kind: str  # request | complaint
    language: str
    due_at: datetime


def complaint_facts(s: Session, ticket_id: int) -> ComplaintFacts:
    """The ticket's kind, language and deadline."""
    row = s.execute(
        select(col(Ticket.kind), col(Ticket.language), col(Ticket.due_at)).where(col(Ticket.id) == ticket_id)
    ).one()
    return ComplaintFacts(str(row[0]), str(row[1]), row[2])


def make_complaint(s: Session, ticket_id: int, due_at: datetime) -> bool:
    """Turn a request into a complaint with the complaint's deadline; False (nothing changed)
    when it already is one, so a conversation becomes a complaint once."""
    done = s.execute(
        update(Ticket)
        .where(col(Ticket.id) == ticket_id, col(Ticket.kind) != "complaint")
        .values(kind="complaint", due_at=due_at)
    )
    return _rowcount(done) == 1


def ticket_history_texts(
    s: Session, ticket_id: int, before: int | None, limit: int = 50, chars: int = 5000
) -> list[str]:
    """The text of a ticket's mails stored before message `before` (None: all), in and out
    (ours too), newest first: what a reply may quote."""
    earlier = col(MessageRow.id) < before if before is not None else true()
    rows = s.execute(
        select(func.substr(col(MessageRow.body_text), 1, chars))
        .where(col(MessageRow.ticket_id) == ticket_id, earlier)
        .order_by(col(MessageRow.id).desc())
        .limit(limit)
    ).scalars()
    return [str(text) for text in rows]


class QueuedMail(NamedTuple):
    """A mail we rendered into the outbox (ack, closing mail, notice…) and its ticket, if any."""

    kind: str
    ticket: TicketRef | None


def queued_mail(s: Session, office: str, message_id: str) -> QueuedMail | None:
    """The mail this office queued with this Message-ID (outbox.enqueue's dedupe key), or None."""
    row = s.execute(
        select(col(MessageRow.kind), *_TICKET_COLUMNS)
        .join(_T, _T.c.id == col(MessageRow.ticket_id), isouter=True)
        .where(col(MessageRow.office_code) == office, col(MessageRow.dedupe_key) == f"out:{message_id}")
        .limit(1)
    ).first()
    if row is None:
        return None
    return QueuedMail(str(row[0]), TicketRef(*row[1:]) if row[1] is not None else None)


# --- staff answers stored before the request they answer ----------------------------------

_E = EarlyAnswer.__table__  # type: ignore[attr-defined]
_EARLY_CITED = (  # the hot path: a new ticket asks whether any answer waits for its request
    select(_E.c.message_pk)
    .where(_E.c.office_code == bindparam("office"), _E.c.cited_message_id == bindparam("mid"))
    .limit(1)
)
_EARLY_CITED_P = _Prepared(_EARLY_CITED)
_EARLY_CITING = (
    select(_E.c.message_pk, _E.c.answered_at, _E.c.officer)
    .where(_E.c.office_code == bindparam("office"), _E.c.cited_message_id == bindparam("mid"))
    .order_by(_E.c.answered_at, _E.c.message_pk)
)


class EarlyRef(NamedTuple):
    """An officer's answer waiting for the request it cites: its messages.id, time, officer."""

    message_pk: int
    answered_at: datetime
    officer: str


def add_early_answer(
    s: Session,
    office: str,
    message_pk: int,
    cited: Sequence[str],
    answered_at: datetime,
    officer: str,
    now: datetime,
) -> None:
    """Note an officer's mail stored on no ticket under each Message-ID it cites."""
    rows = [
        {"office_code": office, "cited_message_id": mid, "message_pk": message_pk,
         "answered_at": answered_at, "officer": officer, "created_at": now}
        for mid in dict.fromkeys(cited)
    ]  # fmt: skip
    if rows:
        s.connection().execute(insert(_E), rows)


def early_answers_citing(s: Session, office: str, message_id: str) -> list[EarlyRef]:
    """The officers' answers stored before this mail that cite its Message-ID, oldest first
    (one indexed lookup, ix_early_answers_office_cited; the table holds only waiting answers)."""
    if _EARLY_CITED_P.run(s, {"office": office, "mid": message_id}).fetchone() is None:
        return []  # nearly always: no query beyond the prepared one
    rows = s.connection().execute(_EARLY_CITING, {"office": office, "mid": message_id})
    found: dict[int, EarlyRef] = {}
    for pk, at, officer in rows:
        found.setdefault(int(pk), EarlyRef(int(pk), at, str(officer)))
    return list(found.values())


def attach_early_answer(s: Session, message_pk: int, ticket_id: int) -> None:
    """Put a waiting answer on its ticket; it waits no longer."""
    s.execute(update(MessageRow).where(col(MessageRow.id) == message_pk).values(ticket_id=ticket_id))
    s.execute(delete(EarlyAnswer).where(col(EarlyAnswer.message_pk) == message_pk))


def defer_outbox(s: Session, outbox_id: int, at: datetime) -> None:
    """Hold a queued mail until `at` (e.g. the office's next opening: no mail at night)."""
    s.execute(update(OutboxRow).where(col(OutboxRow.id) == outbox_id).values(next_attempt_at=at))


class OurMail(NamedTuple):
    """A mail this office sent, found among a reply's Message-IDs: its row and its ticket."""

    message_pk: int
    ticket_id: int | None


def our_mail_among(
    s: Session, office: str, kinds: Sequence[str], message_ids: Sequence[str]
) -> OurMail | None:
    """The newest mail of one of these kinds (e.g. "closing", "notice") this office sent with
    one of these Message-IDs, or None."""
    if not message_ids:
        return None
    row = s.execute(
        select(col(MessageRow.id), col(MessageRow.ticket_id))
        .where(
            col(MessageRow.office_code) == office,
            col(MessageRow.direction) == "out",
            col(MessageRow.kind).in_(list(kinds)),
            col(MessageRow.message_id).in_(list(message_ids)),
        )
        .order_by(col(MessageRow.id).desc())
        .limit(1)
    ).first()
    return None if row is None else OurMail(int(row[0]), row[1])


def save_rating(
    s: Session,
    ticket_id: int,
    office: str,
    score: int,
    how: str,
    rater: str,
    message_id: str | None,
    at: datetime,
) -> None:
    """Record a ticket's rating; a later rating replaces the earlier one (counted)."""
    values = {"score": score, "how": how, "rater": rater, "message_id": message_id, "rated_at": at}
    done = s.execute(
        update(Rating).where(col(Rating.ticket_id) == ticket_id).values(**values, count=col(Rating.count) + 1)
    )
    if _rowcount(done) == 0:
        s.execute(insert(Rating).values(ticket_id=ticket_id, office_code=office, count=1, **values))


def rating_of(s: Session, ticket_id: int) -> Rating | None:
    return s.get(Rating, ticket_id)


def tickets_received_before(s: Session, office: str, until: datetime) -> list[Ticket]:
    """Every ticket of an office received before `until` (the monthly report)."""
    query = (
        select(Ticket)
        .where(col(Ticket.office_code) == office, col(Ticket.received_at) < until)
        .order_by(col(Ticket.id))
    )
    return list(s.execute(query).scalars())


def ticket_histories(s: Session, office: str, until: datetime) -> dict[int, list[tuple[datetime, str, str]]]:
    """{ticket id: [(at, event, state after), …]} of an office's events before `until`, oldest first."""
    rows = s.execute(
        select(
            col(TicketEvent.ticket_id), col(TicketEvent.at), col(TicketEvent.event), col(TicketEvent.state)
        )
        .join(Ticket, col(Ticket.id) == col(TicketEvent.ticket_id))
        .where(col(Ticket.office_code) == office, col(TicketEvent.at) < until)
        .order_by(col(TicketEvent.id))
    ).all()
    out: dict[int, list[tuple[datetime, str, str]]] = {}
    for ticket_id, at, event, state in rows:
        out.setdefault(int(ticket_id), []).append((at, event, state))
    return out


def ratings_between(s: Session, office: str, start: datetime, end: datetime) -> list[int]:
    """The scores of an office's ratings given in [start, end)."""
    rows = s.execute(
        select(col(Rating.score)).where(
            col(Rating.office_code) == office, col(Rating.rated_at) >= start, col(Rating.rated_at) < end
        )
    ).scalars()
    return [int(score) for score in rows]


def report_delivered(s: Session, month: str, recipient: str, scope: str) -> bool:
    key = (month, recipient, scope)
    return s.get(ReportDelivery, key) is not None


def add_report_delivery(
    s: Session, month: str, recipient: str, scope: str, outbox_id: int | None, at: datetime
) -> None:
    """Note a monthly report queued (the primary key makes a second one fail)."""
    s.execute(
        insert(ReportDelivery).values(
            month=month, recipient=recipient, scope=scope, outbox_id=outbox_id, queued_at=at
        )
    )


# --- the operator: status, dead letters, failed deliveries -------------------------------
# `mailer status`, `mailer dead-letters`, `mailer outbox` (mailer/status.py, mailer/repair.py).
# Read by a person or a monitoring timer, never on the per-mail path.

_DL = DeadLetter.__table__  # type: ignore[attr-defined]
# What the outbox shows: a pending mail that was tried and is waiting for its retry is "deferred".
_SHOWN_STATE = case((and_(_O.c.state == "pending", _O.c.attempts > 0), "deferred"), else_=_O.c.state)
OUTBOX_STATES = ("pending", "deferred", "sending", "sent", "failed", "suppressed")


def mailbox_cursors(s: Session) -> list[MailboxCursor]:
    """Every stored mailbox cursor (office, folder, uidvalidity, last_uid, updated_at: when it
    last moved), by office and folder."""
    query = select(MailboxCursor).order_by(col(MailboxCursor.office_code), col(MailboxCursor.folder))
    return list(s.execute(query).scalars())


class OutboxCount(NamedTuple):
    """One office's deliveries in one shown state: how many, the oldest one's creation, how
    many are late (due before `late_before` and not sent) and failed since `failed_since`."""

    office_code: str
    state: str  # pending | deferred | sending | sent | failed
    total: int
    oldest_created_at: datetime | None
    late: int
    recent_failures: int


def outbox_overview(s: Session, late_before: datetime, failed_since: datetime) -> list[OutboxCount]:
    """Per office and shown state (OUTBOX_STATES), the counts of `mailer status`."""
    shown = _SHOWN_STATE.label("shown")
    late = and_(_O.c.state.in_(("pending", "sending")), _O.c.next_attempt_at < late_before)
    recent = and_(_O.c.state == "failed", _O.c.failed_at >= failed_since)
    rows = s.connection().execute(
        select(
            _O.c.office_code,
            shown,
            func.count(),
            func.min(_O.c.created_at),
            func.sum(case((late, 1), else_=0)),
            func.sum(case((recent, 1), else_=0)),
        ).group_by(_O.c.office_code, shown)
    )
    return [
        OutboxCount(str(o), str(st), int(n), old, int(late or 0), int(failed or 0))
        for o, st, n, old, late, failed in rows
    ]


def ticket_overview(s: Session, now: datetime) -> dict[str, dict[str, int]]:
    """Per office, tickets by state and "overdue" (open, deadline passed):
    {office_code: {"open": n, "waiting": n, …, "overdue": n}}."""
    found: dict[str, dict[str, int]] = {}
    conn = s.connection()
    for office, state, n in conn.execute(
        select(_T.c.office_code, _T.c.state, func.count()).group_by(_T.c.office_code, _T.c.state)
    ):
        found.setdefault(str(office), {})[str(state)] = int(n)
    late = select(_T.c.office_code, func.count()).where(_T.c.state == "open", _T.c.due_at < now)
    for office, n in conn.execute(late.group_by(_T.c.office_code)):
        found.setdefault(str(office), {})["overdue"] = int(n)
    return found


def dead_letter_counts(s: Session) -> dict[str, tuple[int, int]]:
    """Per office, (not yet resolved, resolved) dead letters."""
    open_ = func.sum(case((_DL.c.resolved_at.is_(None), 1), else_=0))
    rows = s.connection().execute(select(_DL.c.office_code, open_, func.count()).group_by(_DL.c.office_code))
    return {str(o): (int(n or 0), int(total) - int(n or 0)) for o, n, total in rows}


class DeadLetterLine(NamedTuple):
    """A dead letter as `mailer dead-letters` lists it (without its bytes; `size` in bytes)."""

    id: int
    office_code: str
    folder: str
    uidvalidity: int
    uid: int
    step: str
    error: str
    size: int
    created_at: datetime
    retries: int
    resolved_at: datetime | None
    resolution: str


_DEAD_LETTER_LINE = select(
    _DL.c.id, _DL.c.office_code, _DL.c.folder, _DL.c.uidvalidity, _DL.c.uid, _DL.c.step, _DL.c.error,
    func.length(_DL.c.raw), _DL.c.created_at, _DL.c.retries, _DL.c.resolved_at, _DL.c.resolution,
)  # fmt: skip


def dead_letters(
    s: Session, office: str | None = None, resolved: bool = False, limit: int = 200
) -> list[DeadLetterLine]:
    """Dead letters, oldest first: those not yet resolved, or with `resolved` all of them."""
    query = _DEAD_LETTER_LINE.order_by(_DL.c.id).limit(limit)
    if office:
        query = query.where(_DL.c.office_code == office)
    if not resolved:
        query = query.where(_DL.c.resolved_at.is_(None))
    return [DeadLetterLine._make(row) for row in s.connection().execute(query)]


def dead_letter(s: Session, dead_letter_id: int) -> DeadLetter | None:
    """One dead letter, with its raw bytes."""
    return s.get(DeadLetter, dead_letter_id)


def note_dead_letter_retry(s: Session, dead_letter_id: int) -> None:
    """Count one more retry of a dead letter (its step and reason are add_dead_letter's)."""
    s.execute(
        update(DeadLetter)
        .where(col(DeadLetter.id) == dead_letter_id)
        .values(retries=col(DeadLetter.retries) + 1)
    )


def resolve_dead_letter(s: Session, dead_letter_id: int, at: datetime, resolution: str) -> bool:
    """Mark a dead letter resolved (kept, with what became of the mail); False if it already was."""
    done = s.execute(
        update(DeadLetter)
        .where(col(DeadLetter.id) == dead_letter_id, col(DeadLetter.resolved_at).is_(None))
        .values(resolved_at=at, resolution=resolution)
    )
    return _rowcount(done) == 1


def stored_mail_ticket(s: Session, office: str, dedupe_key: str) -> str | None:
    """The reference of the ticket the office's stored copy of a mail is on ("" when on none),
    or None when the office has no such mail."""
    row = (
        s.connection()
        .execute(
            select(_T.c.ref)
            .select_from(_M.outerjoin(_T, _T.c.id == _M.c.ticket_id))
            .where(_M.c.office_code == office, _M.c.dedupe_key == dedupe_key)
            .limit(1)
        )
        .first()
    )
    return None if row is None else str(row[0] or "")


class Delivery(NamedTuple):
    """An outbox row as `mailer outbox` lists it (state as shown: OUTBOX_STATES)."""

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
    _SHOWN_STATE,
    _O.c.attempts,
    _O.c.last_error,
    _O.c.next_attempt_at,
    _O.c.created_at,
    _O.c.sent_at,
    _O.c.failed_at,
).select_from(_O.join(_M, _M.c.id == _O.c.message_pk).outerjoin(_T, _T.c.id == _O.c.ticket_id))


def deliveries(
    s: Session, office: str | None = None, state: str | None = None, limit: int = 50
) -> list[Delivery]:
    """Outbox rows, newest first, optionally of one office and one shown state."""
    query = _DELIVERY.order_by(_O.c.id.desc()).limit(limit)
    if office:
        query = query.where(_O.c.office_code == office)
    if state:
        query = query.where(_SHOWN_STATE.in_([state]))
    return [Delivery._make(row) for row in s.connection().execute(query)]


def delivery(s: Session, outbox_id: int) -> Delivery | None:
    row = s.connection().execute(_DELIVERY.where(_O.c.id == outbox_id)).first()
    return None if row is None else Delivery._make(row)


def release_failed_delivery(s: Session, outbox_id: int, now: datetime) -> bool:
    """Put a failed delivery back in the queue, due now, its attempts counted afresh (the error
    stays until the next attempt); False unless it was `failed`."""
    done = s.execute(
        update(OutboxRow)
        .where(col(OutboxRow.id) == outbox_id, col(OutboxRow.state) == "failed")
        .values(state="pending", attempts=0, next_attempt_at=now, failed_at=None)
    )
    return _rowcount(done) == 1
