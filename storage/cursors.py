"""How far each mailbox has been read: (office, folder) -> (UIDVALIDITY, last UID done).

Read and moved once per mail on the hot path: prepared statements (storage/prepared.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlmodel import Session, col

from storage.prepared import Prepared, table_of
from storage.tables import MailboxCursor

_C = table_of(MailboxCursor)
_GET_CURSOR = select(_C.c.uidvalidity, _C.c.last_uid).where(
    _C.c.office_code == bindparam("office"), _C.c.folder == bindparam("box")
)
_MOVE_CURSOR = Prepared(
    update(_C)
    .where(_C.c.office_code == bindparam("office"), _C.c.folder == bindparam("box"))
    .values(uidvalidity=bindparam("validity"), last_uid=bindparam("uid"), updated_at=bindparam("now"))
)
_NEW_CURSOR = Prepared(
    insert(_C).values(
        office_code=bindparam("office"),
        folder=bindparam("box"),
        uidvalidity=bindparam("validity"),
        last_uid=bindparam("uid"),
        updated_at=bindparam("now"),
    )
)


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
    if _MOVE_CURSOR.run(s, values).rowcount == 0:
        _NEW_CURSOR.run(s, values)


def mailbox_cursors(s: Session) -> list[MailboxCursor]:
    """Every stored mailbox cursor (office, folder, uidvalidity, last_uid, updated_at: when it
    last moved), by office and folder (`mailer status`)."""
    query = select(MailboxCursor).order_by(col(MailboxCursor.office_code), col(MailboxCursor.folder))
    return list(s.execute(query).scalars())
