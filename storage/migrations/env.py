"""Alembic environment: runs on the connection storage.db.migrate() hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlmodel import SQLModel

from storage import tables  # noqa: F401  (registers the tables on the metadata)
from storage.db import include_name

target_metadata = SQLModel.metadata
_OPTIONS = {"target_metadata": target_metadata, "render_as_batch": True, "include_name": include_name}


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:  # `alembic` on the command line: URL from -x url=...
        url = context.get_x_argument(as_dictionary=True)["url"]
        with create_engine(url).connect() as conn:
            context.configure(
                connection=conn,
                target_metadata=target_metadata,
                render_as_batch=True,
                include_name=include_name,
            )
            with context.begin_transaction():
                context.run_migrations()
        return
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
