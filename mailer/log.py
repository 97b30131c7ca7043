"""structlog set-up: JSON lines in production, readable lines on a terminal.

Context (office, mailbox, uid, message_id, ticket) is bound with structlog.contextvars by the
code that knows it, so every event below carries it without passing it around.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


def configure(fmt: str = "auto", level: str = "info") -> None:
    """fmt: auto (console on a terminal, JSON otherwise) | json | console."""
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        if use_console
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),  # one write per line
        cache_logger_on_first_use=False,
    )


def get(name: str) -> Any:
    """A logger for a module; its last name part becomes the `component` field."""
    return structlog.get_logger(component=name.rsplit(".", 1)[-1])
