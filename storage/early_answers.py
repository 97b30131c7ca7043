"""Officers' answers stored before the request they answer (the Sent folder read before the
INBOX had the request): noted under each Message-ID they cite, looked up when a new ticket is
opened (a prepared statement: nearly always nothing waits), put on their ticket once it exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, delete, insert, select, update
from sqlmodel import Session, col

from storage.prepared import Prepared, table_of
from storage.tables import EarlyAnswer, MessageRow

_E = table_of(EarlyAnswer)
_EARLY_CITED = Prepared(  # the hot path: a new ticket asks whether any answer waits for its request
    select(_E.c.message_pk)
    .where(_E.c.office_code == bindparam("office"), _E.c.cited_message_id == bindparam("mid"))
    .limit(1)
)
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
    if _EARLY_CITED.run(s, {"office": office, "mid": message_id}).fetchone() is None:
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
