"""`mailer check-config`'s second look: values that are placeholders (the settings load, but no
mail should go there), and with `--connect` a login to every IMAP and SMTP server the offices
use, each failure said in words an operator can act on ("this port does not speak TLS")."""

from __future__ import annotations

import asyncio
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mailer.delivery.smtp import Submitter
from mailer.errors import ConfigError, PermanentError, TransientError
from mailer.intake.imap import MailboxClient
from mailer.settings import ImapSettings, Settings, SmtpSettings

PROBE_TIMEOUT_S = 10.0
# RFC 2606 / 6761 names that never receive mail, and the word the shipped file marks its
# invented values with.
_PLACEHOLDER = re.compile(
    r"placeholder|@example\.(?:com|org|net)\b|\.example\b|@[^@\s]*\.(?:test|invalid)\b", re.IGNORECASE
)


def placeholders(file: Path) -> list[str]:
    """ "offices.3514.head = 'placeholder.kepala3514@bps.go.id'" for each value of the settings
    file that is a placeholder, in file order (comments are not values)."""
    with file.open("rb") as f:
        data = tomllib.load(f)
    return [f"{key} = {value!r}" for key, value in _values(data, "") if _PLACEHOLDER.search(value)]


def _values(data: Any, prefix: str) -> Iterator[tuple[str, str]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _values(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _values(value, f"{prefix}[{i}]")
    elif isinstance(data, str):
        yield prefix, data


@dataclass(frozen=True, slots=True)
class Probe:
    """One server as the offices use it, and what logging in to it said."""

    kind: str  # IMAP | SMTP
    where: str  # "imaps://mail.bps.go.id:993 as bps3514"
    offices: tuple[str, ...]
    problem: str = ""  # "" when the login worked


def connect_all(settings: Settings) -> list[Probe]:
    """Log in once to each distinct IMAP account (and open its folder) and each distinct SMTP
    server and login, in parallel; one Probe each."""
    imap: dict[ImapSettings, list[str]] = {}
    smtp: dict[SmtpSettings, list[str]] = {}
    for o in settings.offices:
        imap.setdefault(o.imap, []).append(o.code)
        smtp.setdefault(o.smtp, []).append(o.code)

    async def everything() -> list[Probe]:
        checks = [asyncio.to_thread(_imap, s, tuple(codes)) for s, codes in imap.items()]
        checks += [_smtp(s, tuple(codes)) for s, codes in smtp.items()]
        return list(await asyncio.gather(*checks))

    return asyncio.run(everything())


def _imap(s: ImapSettings, offices: tuple[str, ...]) -> Probe:
    where = f"{s.tls}://{s.host}:{s.port}/{s.folder} as {s.username}"
    client = MailboxClient(replace(s, timeout_s=min(s.timeout_s, PROBE_TIMEOUT_S)))
    try:
        client.connect()
    except (TransientError, PermanentError, ConfigError) as exc:
        return Probe("IMAP", where, offices, explain(str(exc), s.tls, "imaps"))
    finally:
        client.close()
    return Probe("IMAP", where, offices)


async def _smtp(s: SmtpSettings, offices: tuple[str, ...]) -> Probe:
    login = f" as {s.username}" if s.username else " (no login)"
    where = f"{s.tls}://{s.host}:{s.port}{login}"
    submitter = Submitter(replace(s, timeout_s=min(s.timeout_s, PROBE_TIMEOUT_S)))
    try:
        await submitter.probe()
    except (TransientError, PermanentError) as exc:
        return Probe("SMTP", where, offices, explain(str(exc), s.tls, "smtps"))
    return Probe("SMTP", where, offices)


def explain(error: str, tls: str, implicit: str) -> str:
    """The error, preceded by what it most likely means for the settings."""
    text = error.lower()
    if "wrong version number" in text or "wrong_version_number" in text or "unknown protocol" in text:
        hint = 'this port does not speak TLS from the start: use tls = "starttls" or the server\'s TLS port'
    elif "certificate" in text and "verify failed" in text:
        hint = "the server's certificate is not trusted here (ca_file?) or names another host"
    elif "refused" in text and "login" not in text:
        hint = "nothing listens on that host and port"
    elif "name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        hint = "no such host name"
    elif "timed out" in text or "timeout" in text:
        hint = (
            f'no greeting: the port may expect TLS from the start (tls = "{implicit}")'
            if tls != implicit
            else "no answer in time (a firewall, or the wrong port)"
        )
    elif "login" in text or "authentication" in text or "535" in text:
        hint = "the user name or password is refused (password_env / password_file)"
    elif "starttls" in text:
        hint = "the server offers no STARTTLS on this port"
    else:
        hint = "see the error"
    return f"{hint} [{error}]"
