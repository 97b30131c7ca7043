"""Ratings: the requester's score of a ticket on the public satisfaction survey's scale (SKM,
1 tidak puas … 4 sangat puas); one row per ticket, the latest rating wins (counted)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update
from sqlmodel import Session, col

from storage.prepared import rowcount
from storage.tables import Rating


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
    """Record a ticket's rating (`how`: mailto | reply); a later rating replaces the earlier one."""
    values = {"score": score, "how": how, "rater": rater, "message_id": message_id, "rated_at": at}
    done = s.execute(
        update(Rating).where(col(Rating.ticket_id) == ticket_id).values(**values, count=col(Rating.count) + 1)
    )
    if rowcount(done) == 0:
        s.execute(insert(Rating).values(ticket_id=ticket_id, office_code=office, count=1, **values))


def rating_of(s: Session, ticket_id: int) -> Rating | None:
    """A ticket's rating, or None."""
    return s.get(Rating, ticket_id)


def ratings_between(s: Session, office: str, start: datetime, end: datetime) -> list[int]:
    """The scores of an office's ratings given in [start, end)."""
    rows = s.execute(
        select(col(Rating.score)).where(
            col(Rating.office_code) == office, col(Rating.rated_at) >= start, col(Rating.rated_at) < end
        )
    ).scalars()
    return [int(score) for score in rows]
