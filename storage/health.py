"""How each connection of a daemon last went: (office, channel) -> last success, failing since,
last error. Written by the mailbox watchers and the senders; read by `mailer status`."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import insert, select, update
from sqlmodel import Session, col

from storage.prepared import rowcount
from storage.tables import ConnectionHealth

_ERROR_CHARS = 500
SMTP_CHANNEL = "smtp"  # an office's SMTP server; mailbox folders are "imap:inbox", "imap:sent"
NOTE_EVERY = timedelta(minutes=1)  # a working channel's success is written at most this often


def record_ok(s: Session, office: str, channel: str, now: datetime) -> None:
    """A session of this channel worked at `now`: it is no longer failing."""
    where = (col(ConnectionHealth.office_code) == office, col(ConnectionHealth.channel) == channel)
    done = s.execute(update(ConnectionHealth).where(*where).values(last_ok_at=now, failing_since=None))
    if rowcount(done) == 0:
        s.execute(insert(ConnectionHealth).values(office_code=office, channel=channel, last_ok_at=now))


def record_failure(s: Session, office: str, channel: str, error: str, now: datetime) -> None:
    """A session of this channel failed at `now` with `error` (failing since the first such
    failure after the last success)."""
    where = (col(ConnectionHealth.office_code) == office, col(ConnectionHealth.channel) == channel)
    row = s.execute(select(col(ConnectionHealth.failing_since)).where(*where)).first()
    values = {"last_error": error[:_ERROR_CHARS], "last_error_at": now}
    if row is None:
        s.execute(
            insert(ConnectionHealth).values(office_code=office, channel=channel, failing_since=now, **values)
        )
    else:
        s.execute(update(ConnectionHealth).where(*where).values(failing_since=row[0] or now, **values))


def connection_health(s: Session) -> list[ConnectionHealth]:
    """Every channel's record, by office and channel."""
    query = select(ConnectionHealth).order_by(
        col(ConnectionHealth.office_code), col(ConnectionHealth.channel)
    )
    return list(s.execute(query).scalars())
