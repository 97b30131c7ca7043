"""A mail's bytes written to the database without a second copy lingering (SQLite).

Bound as a statement parameter, a value is copied into SQLite, and that copy stays with the
statement in the connection's statement cache until the statement runs again: every pooled
connection that once stored a 40 MB mail kept 40 MB (bench/bigmail.py, bench/README.md). So on
SQLite a value over BIG_BYTES is stored as an empty value first, then sized with zeroblob()
(which SQLite writes without making the zeros in memory) and written in BLOB_PIECE pieces
through SQLite's incremental blob I/O, in the session's transaction. Other databases take the
value as a parameter, as before (psycopg keeps no copy once the statement ran).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlmodel import Session

BIG_BYTES = 1_000_000  # a value over this is written in pieces on SQLite
BLOB_PIECE = 1 << 20
_COLUMNS = frozenset({("messages", "raw"), ("dead_letters", "raw"), ("attachments", "content")})  # may be big


def in_pieces(s: Session, data: bytes) -> bool:
    """Whether `data` is to be written with write_big after its row is inserted with b""."""
    return len(data) > BIG_BYTES and s.connection().dialect.name == "sqlite"


def write_big(s: Session, table: str, column: str, row_id: int, data: bytes) -> None:
    """Write `data` into `column` of row `row_id` of `table` (inserted with b"" there)."""
    if (table, column) not in _COLUMNS:
        raise ValueError(f"not a column written in pieces: {table}.{column}")
    connection = s.connection()
    sized = text(f"UPDATE {table} SET {column} = zeroblob(:n) WHERE id = :id")
    connection.execute(sized, {"n": len(data), "id": row_id})
    sqlite: Any = connection.connection.driver_connection  # sqlite3.Connection
    view = memoryview(data)
    with sqlite.blobopen(table, column, row_id) as blob:
        for start in range(0, len(view), BLOB_PIECE):
            blob.write(view[start : start + BLOB_PIECE])
