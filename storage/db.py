"""Engine, sessions and transactions; schema migrations (alembic) at start.

SQLite runs in WAL mode with `synchronous=NORMAL` (a committed transaction survives the
process being killed; the last ones may be lost on power failure) and takes the write lock at
BEGIN (`BEGIN IMMEDIATE`), so that threads writing at once wait for each other instead of
failing with "database is locked" halfway through a transaction.

A SQLite connection that failed because the file could not be written (read-only, I/O error,
gone) is thrown away with every idle one of the pool (SQLAlchemy's disconnect handling), so
that once the file is writable again the next transaction opens a fresh connection: SQLite
opens a file it may not write read-only, silently, and such a connection would stay so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.engine.url import make_url
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlmodel import Session

MIGRATIONS = Path(__file__).with_name("migrations")
# Tables the migrations create that are not models (the full-text index and, on SQLite, the
# FTS5 shadow tables behind it): left out of autogenerate's comparison.
NOT_MODELLED_PREFIX = "ticket_search"


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic include_name hook: everything but the tables that are not models."""
    return not (type_ == "table" and name is not None and name.startswith(NOT_MODELLED_PREFIX))


# SQLite's messages for a connection that cannot write its file (SQLITE_READONLY*, SQLITE_IOERR*,
# SQLITE_CANTOPEN): recycled. Not "database is locked" (wait) nor "disk is full" (the connection
# is sound; space comes back).
_BROKEN_SQLITE = ("readonly database", "disk i/o error", "unable to open database file")


def is_failure(exc: BaseException) -> bool:
    """Whether `exc` is the database failing (locked, unreachable, unwritable, full): not the
    fault of the data, worth trying again later."""
    return isinstance(exc, OperationalError | DisconnectionError | InterfaceError)


def _recycle_broken(ctx: ExceptionContext) -> None:
    message = str(ctx.original_exception).lower()
    if any(text in message for text in _BROKEN_SQLITE):
        ctx.is_disconnect = True  # invalidates this connection and the idle ones of the pool


_READ_ONLY = "pst_read_only"  # execution option of `reading`: a deferred BEGIN on SQLite


def make_engine(url: str, checkpoint_pages: int = 1000, busy_timeout_s: float = 30.0) -> Engine:
    """An engine for `url` with the SQLite pragmas set on every connection. `checkpoint_pages`:
    a commit that leaves the WAL longer than this runs a checkpoint (SQLite's default, 1000).
    `busy_timeout_s`: how long a transaction waits for another's write lock before failing."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": busy_timeout_s})
    event.listen(engine, "handle_error", _recycle_broken)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cursor.execute(f"PRAGMA wal_autocheckpoint={int(checkpoint_pages)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A reader (`reading`) never takes the write lock: in WAL it reads its snapshot while a
        # writer holds the lock (the outbox holds it over an SMTP DATA). Writers take it at once.
        deferred = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")

    return engine


class HeldWrite:
    """A write transaction opened ahead of the moment it must commit at once (SQLite: the write
    lock taken at `open`, waiting for others there). The outbox opens one before an SMTP DATA,
    so that the commit recording the server's 250 waits for nobody: `take` hands the connection
    to that commit; `close` rolls back and closes what was not taken. `turn`, when given, is
    held from `open` to `release`: writers of one event loop queue there, woken as soon as the
    previous one is done, rather than in SQLite's busy handler, which polls (1 to 100 ms)."""

    def __init__(self, engine: Engine, turn: asyncio.Lock | None = None) -> None:
        self.engine, self.turn = engine, turn
        self.conn: Connection | None = None
        self._has_turn = False

    async def open(self) -> None:
        if self.turn is not None:
            await self.turn.acquire()
            self._has_turn = True
        try:
            self.conn = await asyncio.to_thread(self._begin)
        except BaseException:
            self.release()
            raise

    def _begin(self) -> Connection:
        conn = self.engine.connect()
        try:
            conn.begin()
        except BaseException:
            conn.close()
            raise
        return conn

    def take(self) -> Connection | None:
        conn, self.conn = self.conn, None
        return conn

    def close(self) -> None:
        """Roll back and close what was not taken (from any thread; then `release`)."""
        conn = self.take()
        if conn is not None:
            conn.close()

    def release(self) -> None:
        """Give up the turn, once the transaction is committed or closed (event loop thread)."""
        if self._has_turn and self.turn is not None:
            self._has_turn = False
            self.turn.release()


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: commits when the block ends, rolls back if it raises."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session


@contextmanager
def statements(engine: Engine) -> Iterator[Connection]:
    """A short unit of work on a bare connection (no ORM session): commits when the block
    ends, rolls back if it raises. For the sender's one commit per mail, where a Session's
    set-up is about a third of the cost."""
    with engine.begin() as conn:
        yield conn


@contextmanager
def reading(engine: Engine) -> Iterator[Session]:
    """A session for reads only (on SQLite it does not wait for the write lock)."""
    with Session(engine.execution_options(**{_READ_ONLY: True}), expire_on_commit=False) as session:
        yield session


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to the newest migration (safe to call at every start), or to `revision`."""
    from alembic import command  # imported here: processes that only read and write (the
    from alembic.config import Config  # sender process) start faster without it

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
