"""Hot statements compiled once and run on the DBAPI cursor: the per-mail path's speed.

SQLAlchemy's per-call work (cache key, parameter set-up, result wrapping) was about a third of
the CPU of storing a mail. A `Prepared` statement keeps the same SQL and the same conversions
(each parameter through its type's bind processor for the dialect, e.g. UTCDateTime then
SQLite's datetime-to-text), and skips the rest. It reaches into SQLAlchemy's compiled form
(`binds`, `positiontup`, `effective_value`) and error handling (`_handle_dbapi_exception`),
which is why pyproject.toml pins SQLAlchemy's minor version; tests/test_storage.py compares
the rows it stores with the ORM's on SQLite and PostgreSQL, run it after an upgrade.

Also here: the other small helpers every storage module uses (`table_of`, `rowcount`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import Connection, Result, Table
from sqlmodel import Session, SQLModel


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a model (for statements built once against it)."""
    table: Table = model.__table__  # type: ignore[attr-defined]  # SQLModel sets it on table models
    return table


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE touched (CursorResult.rowcount; the Session types it as a plain Result)."""
    return int(getattr(result, "rowcount", 0))


class Prepared:
    """A statement compiled once per dialect and run on the DBAPI cursor of the session's
    connection, inside its transaction. With `table`, an INSERT into it: the columns' scalar
    Python defaults are filled as SQLAlchemy would, for the columns not given, and one form is
    compiled per set of columns given (a name that is no column of the table is refused)."""

    def __init__(self, statement: Any, table: Table | None = None) -> None:
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
        try:
            cursor.execute(form.sql, args)
        except connection.dialect.loaded_dbapi.Error as exc:
            # As if SQLAlchemy had run it: its handle_error events (a broken SQLite connection
            # recycled, storage/db.py), the pool invalidated on a disconnect, the error wrapped.
            connection._handle_dbapi_exception(exc, form.sql, args, cursor, None)
        return cursor

    def _compile(self, connection: Connection, keys: frozenset[str]) -> _Form:
        dialect, defaults = connection.dialect, {}
        column_keys = None
        if self.table is not None:
            unknown = keys - set(self.table.columns.keys())
            if unknown:  # compile() would leave them out without a word: the column's default stored
                raise KeyError(f"no such column in {self.table.name}: {', '.join(sorted(unknown))}")
            for column in self.table.columns:
                if column.key not in keys and column.default is not None and column.default.is_scalar:
                    defaults[column.key] = column.default.arg  # type: ignore[attr-defined]
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
