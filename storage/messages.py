"""Stored mails, in and out, with their bytes kept whole, and the files attached to them.

Storing a mail and asking whether it was stored run once per mail: prepared statements
(storage/prepared.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NotRequired, TypedDict, Unpack

from sqlalchemy import bindparam, func, insert, select, true
from sqlmodel import Session, col

from storage.blobs import in_pieces, write_big
from storage.prepared import Prepared, table_of
from storage.tables import AttachmentRow, MessageRow, OutboxRow, Ticket
from storage.vocabulary import Direction, MessageKind

_M, _T, _A = table_of(MessageRow), table_of(Ticket), table_of(AttachmentRow)
_MESSAGE_EXISTS = Prepared(
    select(_M.c.id)
    .where(_M.c.office_code == bindparam("office"), _M.c.dedupe_key == bindparam("key"))
    .limit(1)
)
_INSERT_MESSAGE = Prepared(insert(_M).returning(_M.c.id), _M)
_INSERT_ATTACHMENTS = insert(_A)


def message_exists(s: Session, office: str, dedupe_key: str) -> bool:
    """Whether this office already stored this mail (same Message-ID and content)."""
    return _MESSAGE_EXISTS.run(s, {"office": office, "key": dedupe_key}).fetchone() is not None


class NewMessage(TypedDict):
    """The columns of a stored mail (storage.tables.MessageRow). A column left out takes the
    table's default ("" or None)."""

    office_code: str
    direction: Direction
    kind: MessageKind
    dedupe_key: str  # unique per office: "<Message-ID> <content hash>" in, "out:<Message-ID>" out
    stored_at: datetime
    raw_sha256: str
    raw: bytes
    ticket_id: NotRequired[int | None]
    reason: NotRequired[str]
    message_id: NotRequired[str | None]
    conversation_index: NotRequired[str | None]
    folder: NotRequired[str | None]
    uidvalidity: NotRequired[int | None]
    uid: NotRequired[int | None]
    from_email: NotRequired[str]
    from_name: NotRequired[str]
    to_emails: NotRequired[str]
    subject: NotRequired[str]
    sent_at: NotRequired[datetime | None]
    body_text: NotRequired[str]
    body_trimmed: NotRequired[str]
    defects: NotRequired[str]


def add_message(s: Session, **message: Unpack[NewMessage]) -> int:
    """Insert a message (in or out); returns its id."""
    raw = message["raw"]
    if not in_pieces(s, raw):
        return int(_INSERT_MESSAGE.run(s, dict(message)).fetchone()[0])
    message_id = int(_INSERT_MESSAGE.run(s, {**message, "raw": b""}).fetchone()[0])
    write_big(s, "messages", "raw", message_id, raw)
    return message_id


class NewAttachment(TypedDict):
    """The columns of an attachment row (storage.tables.AttachmentRow but id)."""

    message_pk: int
    position: int
    filename: str
    original_filename: str
    content_type: str
    size: int
    sha256: str
    origin: str
    content: bytes | None
    omitted: str


def add_attachments(s: Session, rows: Sequence[NewAttachment]) -> None:
    """Insert a message's attachment rows at once."""
    small = [row for row in rows if row["content"] is None or not in_pieces(s, row["content"])]
    if small:
        s.connection().execute(_INSERT_ATTACHMENTS, small)
    for row in rows:
        content = row["content"]
        if content is not None and in_pieces(s, content):
            done = s.connection().execute(_INSERT_ATTACHMENTS.returning(_A.c.id), {**row, "content": b""})
            write_big(s, "attachments", "content", int(done.scalar_one()), content)


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


def ticket_message_ids(s: Session, ticket_id: int, leave_out: Sequence[MessageKind] = ()) -> list[str]:
    """The Message-IDs of a ticket's mails, oldest first (a reply's References), without the
    mails of the kinds in `leave_out` (e.g. what stayed inside the office)."""
    query = (
        select(col(MessageRow.message_id))
        .where(col(MessageRow.ticket_id) == ticket_id, col(MessageRow.message_id).is_not(None))
        .order_by(col(MessageRow.id))
    )
    if leave_out:
        query = query.where(col(MessageRow.kind).not_in(list(leave_out)))
    return [str(m) for m in s.execute(query).scalars()]


def ticket_has_mail_of_kind(s: Session, ticket_id: int, kind: MessageKind) -> bool:
    """Whether a mail of `kind` is stored on the ticket (e.g. a closing mail already queued)."""
    query = select(_M.c.id).where(_M.c.ticket_id == ticket_id, _M.c.kind == kind).limit(1)
    return s.connection().execute(query).first() is not None


def latest_outlook_mail(s: Session, ticket_id: int) -> bytes | None:
    """The raw bytes of the newest mail received on a ticket that carried Outlook's
    Thread-Index (a reply of ours continues its conversation), or None."""
    raw = s.execute(
        select(col(MessageRow.raw))
        .where(
            col(MessageRow.ticket_id) == ticket_id,
            col(MessageRow.direction) == Direction.IN,
            col(MessageRow.conversation_index).is_not(None),
        )
        .order_by(col(MessageRow.id).desc())
        .limit(1)
    ).scalar()
    return None if raw is None else bytes(raw)


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
