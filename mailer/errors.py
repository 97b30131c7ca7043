"""Errors, sorted by what the caller does next.

- ConfigError: stop the start, say file, key and reason.
- TransientError: retry later with backoff (server down, timeout, 4xx).
- PermanentError: record and move on (5xx, refused recipient, a mail that cannot be handled).
  - LoginRefused: the server refused our login: no mail's fault; the mail waits, the operator
    is told (`mailer status`), the connection is tried again only after the longest backoff.
- MailError: one mail broke one step; it goes to the dead letters and the others go on.
"""

from __future__ import annotations


class MailerError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(MailerError):
    """A setting is wrong; the daemon must not start."""

    def __init__(self, file: str, key: str, reason: str) -> None:
        super().__init__(f"{file}: {key}: {reason}")
        self.file = file
        self.key = key
        self.reason = reason


class TransientError(MailerError):
    """Worth trying again later: the server was unreachable, busy, or answered 4xx."""


class RecipientDeferred(TransientError):
    """The server deferred one recipient (4xx to RCPT): retry that mail later, send the others."""


class PermanentError(MailerError):
    """Trying again will not help: the server refused for good (5xx) or the input is unusable."""


class LoginRefused(PermanentError):
    """The server refused the office's login (a wrong password, a locked account): permanent
    for the connection until someone acts, but no mail's failure."""


class MailError(MailerError):
    """One mail failed one step of the pipeline; it is dead-lettered with the step's name."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason


class ParseError(MailError):
    """The bytes could not be read as a mail at all."""

    def __init__(self, reason: str) -> None:
        super().__init__("parse", reason)
