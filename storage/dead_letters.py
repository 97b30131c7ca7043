"""Dead letters: a mail that broke a step, kept whole with the step and the reason, until an
operator retries or resolves it (`mailer dead-letters`, mailer/repair.py).

One row per IMAP identity (office, folder, UIDVALIDITY, UID): a retry that fails again updates it.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import case, func, insert, select, update
from sqlmodel import Session, col

from storage.blobs import in_pieces, write_big
from storage.prepared import rowcount, table_of
from storage.tables import DeadLetter

_DL = table_of(DeadLetter)


def add_dead_letter(
    s: Session,
    *,
    office_code: str,
    folder: str,
    uidvalidity: int,
    uid: int,
    step: str,
    error: str,
    raw_sha256: str,
    raw: bytes,
    created_at: datetime,
) -> bool:
    """Keep a failed mail; False if this (office, folder, uidvalidity, uid) was already kept:
    then the kept row takes the newest step and reason (a retry that failed again)."""
    exists = s.execute(
        select(col(DeadLetter.id)).where(
            col(DeadLetter.office_code) == office_code,
            col(DeadLetter.folder) == folder,
            col(DeadLetter.uidvalidity) == uidvalidity,
            col(DeadLetter.uid) == uid,
        )
    ).first()
    if exists is not None:
        s.execute(update(DeadLetter).where(col(DeadLetter.id) == exists[0]).values(step=step, error=error))
        return False
    pieces = in_pieces(s, raw)
    done = s.execute(
        insert(DeadLetter).values(
            office_code=office_code, folder=folder, uidvalidity=uidvalidity, uid=uid, step=step, error=error,
            raw_sha256=raw_sha256, raw=b"" if pieces else raw, created_at=created_at,
        ).returning(_DL.c.id)
    )  # fmt: skip
    if pieces:
        write_big(s, "dead_letters", "raw", int(done.scalar_one()), raw)
    return True


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


def dead_letter_counts(s: Session) -> dict[str, tuple[int, int]]:
    """Per office, (not yet resolved, resolved) dead letters."""
    open_ = func.sum(case((_DL.c.resolved_at.is_(None), 1), else_=0))
    rows = s.connection().execute(select(_DL.c.office_code, open_, func.count()).group_by(_DL.c.office_code))
    return {str(o): (int(n or 0), int(total) - int(n or 0)) for o, n, total in rows}


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
    return rowcount(done) == 1
