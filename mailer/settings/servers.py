"""An office's mail servers: `[offices.CODE.imap]` (where its mail is read) and
`[offices.CODE.smtp]` (where its mail is sent), with TLS, a private CA and the password, which
comes from the environment or a file and never from the settings file."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from mailer.settings.reader import TableReader

IMAP_TLS = ("imaps", "starttls", "plain")
SMTP_TLS = ("smtps", "starttls", "plain")


@dataclass(frozen=True)
class Secret:
    """A password that never shows in logs, reprs or tracebacks."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('***')"


@dataclass(frozen=True)
class ImapSettings:
    host: str
    port: int
    tls: str  # imaps | starttls | plain (plain only on a loopback host)
    username: str
    password: Secret
    folder: str = "INBOX"
    ca_file: Path | None = None  # trust this CA instead of the system store
    timeout_s: float = 30.0
    # The folder the office account's sent mail lands in: "auto" (the folder with the \Sent
    # special-use flag, RFC 6154), a folder name, or "" (not watched).
    sent_folder: str = "auto"


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    tls: str  # smtps | starttls | plain (plain only on a loopback host)
    username: str | None
    password: Secret | None
    ca_file: Path | None = None
    timeout_s: float = 30.0


def read_imap(r: TableReader, env: dict[str, str]) -> ImapSettings:
    host, tls = _host_and_tls(r, IMAP_TLS)
    password = _password(r, env, required=True)
    assert password is not None
    imap = ImapSettings(
        host=host,
        port=_port(r),
        tls=tls,
        username=r.text("username"),
        password=password,
        folder=r.text("folder", "INBOX"),
        ca_file=_ca_file(r),
        timeout_s=r.number("timeout_s", 30.0),
        sent_folder=r.text("sent_folder", "auto"),
    )
    if imap.sent_folder == imap.folder:
        raise r.fail("sent_folder", f"must differ from folder ({imap.folder!r})")
    r.done()
    return imap


def read_second_imap(r: TableReader, env: dict[str, str], main: ImapSettings, login: str) -> ImapSettings:
    """A second mailbox of the office (`[offices.CODE.complaint_mailbox]`): its own login
    (`username`, default `login`), password and folder; the server (host, port, tls, ca_file,
    timeout_s) the office's [imap] one unless the table names another. No Sent folder is read."""
    host, tls = _host_and_tls(r, IMAP_TLS, main.host, main.tls)
    password = _password(r, env, required=True)
    assert password is not None
    imap = ImapSettings(
        host=host,
        port=_port(r, main.port),
        tls=tls,
        username=r.text("username", login),
        password=password,
        folder=r.text("folder", "INBOX"),
        ca_file=_ca_file(r) if r.text("ca_file", "") else main.ca_file,
        timeout_s=r.number("timeout_s", main.timeout_s),
        sent_folder="",
    )
    if (imap.host, imap.port, imap.username, imap.folder) == (
        main.host,
        main.port,
        main.username,
        main.folder,
    ):
        raise r.fail("username", f"{imap.username} {imap.folder} is the office's main mailbox")
    return imap


def read_smtp(r: TableReader, env: dict[str, str]) -> SmtpSettings:
    host, tls = _host_and_tls(r, SMTP_TLS)
    username = r.text("username", "") or None
    smtp = SmtpSettings(
        host=host,
        port=_port(r),
        tls=tls,
        username=username,
        password=_password(r, env, required=username is not None),
        ca_file=_ca_file(r),
        timeout_s=r.number("timeout_s", 30.0),
    )
    r.done()
    return smtp


def _host_and_tls(
    r: TableReader, modes: tuple[str, ...], host_default: str | None = None, tls_default: str | None = None
) -> tuple[str, str]:
    """(host, TLS mode); "plain" (unencrypted) only for a loopback host."""
    host, tls = r.text("host", host_default), r.choice("tls", modes, tls_default)
    if tls != "plain":
        return host, tls
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise r.fail("tls", f"plain (unencrypted) is only allowed for a loopback host, not {host!r}")
    return host, tls


def _port(r: TableReader, default: int | None = None) -> int:
    port = r.integer("port", default, minimum=1)
    if port > 65535:
        raise r.fail("port", f"must be at most 65535, got {port}")
    return port


def _password(r: TableReader, env: dict[str, str], required: bool) -> Secret | None:
    if "password" in r.data:
        raise r.fail("password", "passwords never go in the settings file; use password_env or password_file")
    name, file = r.text("password_env", ""), r.text("password_file", "")
    if name and file:
        raise r.fail("password_env", "give password_env or password_file, not both")
    if name:
        if name not in env:
            raise r.fail("password_env", f"environment variable {name} is not set")
        return Secret(env[name])
    if file:
        path = _path(r, "password_file")
        try:
            return Secret(path.read_text(encoding="utf-8").strip())
        except OSError as exc:
            raise r.fail("password_file", f"cannot read {path}: {exc.strerror}") from None
    if required:
        raise r.fail("password_env", "missing (or password_file)")
    return None


def _path(r: TableReader, name: str) -> Path:
    """A file named in the settings; a relative path is taken from the settings file's folder."""
    path = Path(r.text(name))
    return path if path.is_absolute() else r.file.parent / path


def _ca_file(r: TableReader) -> Path | None:
    if not r.text("ca_file", ""):
        return None
    path = _path(r, "ca_file")
    if not path.is_file():
        raise r.fail("ca_file", f"no such file: {path}")
    return path
