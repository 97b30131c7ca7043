"""Typed settings, loaded once from `settings.toml` and passed explicitly.

Every problem is a ConfigError naming the file, the dotted key and the reason, so that a
wrong setting stops the start before any mailbox is touched.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mailer.errors import ConfigError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
IMAP_TLS = ("imaps", "starttls", "plain")
SMTP_TLS = ("smtps", "starttls", "plain")
_HOURS = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


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


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    tls: str  # smtps | starttls | plain (plain only on a loopback host)
    username: str | None
    password: Secret | None
    ca_file: Path | None = None
    timeout_s: float = 30.0


@dataclass(frozen=True)
class OfficeHours:
    """Opening hours per weekday, local time: {"mon": ("08:00", "15:30"), …}; absent = closed."""

    by_day: dict[str, tuple[str, str]]


@dataclass(frozen=True)
class Office:
    code: str
    name: str
    email: str
    province_code: str
    time_zone: str  # IANA name, e.g. Asia/Jakarta
    time_zone_label: str  # WIB / WITA / WIT
    address: str
    phone: str
    whatsapp: str
    website: str
    sk_number: str
    sla_working_days: int
    hours: OfficeHours
    complaint_channels: tuple[tuple[str, str], ...]  # (label, value) in published order
    imap: ImapSettings
    smtp: SmtpSettings

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def domain(self) -> str:
        return self.email.rsplit("@", 1)[1]


@dataclass(frozen=True)
class Province:
    code: str
    name: str


@dataclass(frozen=True)
class DaemonSettings:
    poll_interval_s: float = 60.0  # when the server has no IDLE
    idle_timeout_s: float = 600.0  # re-issue IDLE at least this often (RFC 2177: < 29 min)
    fetch_batch: int = 200  # UIDs per FETCH
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 300.0


@dataclass(frozen=True)
class OutboxSettings:
    enabled: bool = True
    max_attempts: int = 10
    retry_min_s: float = 30.0
    retry_max_s: float = 3600.0
    batch: int = 100
    connections: int = 2
    own_process: bool = True  # `run` sends from a child process (mailer/sending.py)


@dataclass(frozen=True)
class ThreadingSettings:
    subject_window_days: float = 14.0  # same sender + same normalised subject joins within this


@dataclass(frozen=True)
class Settings:
    file: Path
    database_url: str
    log_format: str  # auto | json | console
    log_level: str
    daemon: DaemonSettings
    outbox: OutboxSettings
    offices: tuple[Office, ...]
    provinces: dict[str, Province]
    threading: ThreadingSettings = ThreadingSettings()

    def office(self, code: str) -> Office:
        for office in self.offices:
            if office.code == code:
                return office
        raise KeyError(code)


class _Reader:
    """Typed access to one TOML table, raising ConfigError with the dotted key."""

    def __init__(self, file: Path, data: dict[str, Any], prefix: str = "") -> None:
        self.file, self.data, self.prefix = file, data, prefix
        self.seen: set[str] = set()

    def done(self) -> None:
        """Refuse keys nobody read: a misspelt key must not silently fall back to a default."""
        for name in self.data:
            if name not in self.seen:
                raise self.fail(name, "unknown key (misspelt?)")

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def fail(self, name: str, reason: str) -> ConfigError:
        return ConfigError(str(self.file), self.key(name), reason)

    def table(self, name: str, required: bool = True) -> _Reader:
        self.seen.add(name)
        value = self.data.get(name, None if required else {})
        if not isinstance(value, dict):
            raise self.fail(name, "missing table" if value is None else "must be a table")
        return _Reader(self.file, value, self.key(name) + ".")

    def _get(self, name: str, kind: type | tuple[type, ...], default: Any) -> Any:
        self.seen.add(name)
        if name not in self.data:
            if default is _REQUIRED:
                raise self.fail(name, "missing")
            return default
        value = self.data[name]
        if isinstance(value, bool) and kind is not bool:
            raise self.fail(name, f"must be {_kind_name(kind)}, got a boolean")
        if not isinstance(value, kind):
            raise self.fail(name, f"must be {_kind_name(kind)}, got {type(value).__name__}")
        return value

    def text(self, name: str, default: Any = None) -> Any:
        value = self._get(name, str, _REQUIRED if default is None else default)
        return value.strip() if isinstance(value, str) else value

    def integer(self, name: str, default: Any = None, minimum: int = 0) -> int:
        value = int(self._get(name, int, _REQUIRED if default is None else default))
        if value < minimum:
            raise self.fail(name, f"must be at least {minimum}, got {value}")
        return value

    def number(self, name: str, default: float | None = None, minimum: float = 0.0) -> float:
        value = float(self._get(name, (int, float), _REQUIRED if default is None else default))
        if value <= minimum:
            raise self.fail(name, f"must be greater than {minimum}, got {value}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        return bool(self._get(name, bool, default))

    def choice(self, name: str, choices: tuple[str, ...], default: Any = None) -> str:
        value = str(self.text(name, default))
        if value not in choices:
            raise self.fail(name, f"must be one of {', '.join(choices)}, got {value!r}")
        return value


_REQUIRED = object()


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def load_settings(path: str | Path, environ: dict[str, str] | None = None) -> Settings:
    """Read and validate the settings file; raise ConfigError on the first problem."""
    file = Path(path).resolve()
    env = dict(os.environ if environ is None else environ)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(file), "-", "file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(file), "-", f"not valid TOML: {exc}") from None
    root = _Reader(file, data)
    storage = root.table("storage")
    log = root.table("log", required=False)
    provinces = _provinces(root.table("provinces"))
    offices_table = root.table("offices")
    offices = tuple(_office(offices_table.table(code), code, provinces, env) for code in offices_table.data)
    if not offices:
        raise root.fail("offices", "no office is configured")
    _check_unique(root, offices)
    settings = Settings(
        file=file,
        database_url=_database_url(storage, file.parent),
        log_format=log.choice("format", ("auto", "json", "console"), "auto"),
        log_level=log.choice("level", ("debug", "info", "warning", "error"), "info"),
        daemon=_daemon(root.table("daemon", required=False)),
        outbox=_outbox(root.table("outbox", required=False)),
        offices=offices,
        provinces=provinces,
        threading=_threading(root.table("threading", required=False)),
    )
    for reader in (storage, log, offices_table, root):
        reader.done()
    return settings


def _database_url(storage: _Reader, base: Path) -> str:
    url = storage.text("url", "")
    if url:
        if not url.startswith(("sqlite:", "postgresql")):
            raise storage.fail("url", "only sqlite:/// and postgresql+psycopg:// URLs are supported")
        return str(url)
    path = Path(storage.text("path"))
    return f"sqlite:///{path if path.is_absolute() else base / path}"


def _daemon(r: _Reader) -> DaemonSettings:
    d = DaemonSettings()
    idle = r.number("idle_timeout_s", d.idle_timeout_s)
    if idle >= 29 * 60:
        raise r.fail("idle_timeout_s", "must stay under 29 minutes (RFC 2177)")
    low, high = r.number("reconnect_min_s", d.reconnect_min_s), r.number("reconnect_max_s", d.reconnect_max_s)
    if high < low:
        raise r.fail("reconnect_max_s", "must not be below reconnect_min_s")
    daemon = DaemonSettings(
        poll_interval_s=r.number("poll_interval_s", d.poll_interval_s),
        idle_timeout_s=idle,
        fetch_batch=r.integer("fetch_batch", d.fetch_batch, minimum=1),
        reconnect_min_s=low,
        reconnect_max_s=high,
    )
    r.done()
    return daemon


def _outbox(r: _Reader) -> OutboxSettings:
    d = OutboxSettings()
    outbox = OutboxSettings(
        enabled=r.flag("enabled", d.enabled),
        max_attempts=r.integer("max_attempts", d.max_attempts, minimum=1),
        retry_min_s=r.number("retry_min_s", d.retry_min_s),
        retry_max_s=r.number("retry_max_s", d.retry_max_s),
        batch=r.integer("batch", d.batch, minimum=1),
        connections=r.integer("connections", d.connections, minimum=1),
        own_process=r.flag("own_process", d.own_process),
    )
    r.done()
    return outbox


def _threading(r: _Reader) -> ThreadingSettings:
    d = ThreadingSettings()
    threading = ThreadingSettings(subject_window_days=r.number("subject_window_days", d.subject_window_days))
    r.done()
    return threading


def _provinces(r: _Reader) -> dict[str, Province]:
    provinces = {}
    for code in r.data:
        table = r.table(code)
        provinces[code] = Province(code, table.text("name"))
        table.done()
    return provinces


def _office(r: _Reader, code: str, provinces: dict[str, Province], env: dict[str, str]) -> Office:
    if not re.fullmatch(r"\d{4}", code):
        raise ConfigError(str(r.file), r.prefix.rstrip("."), "office code must be 4 digits (BPS region code)")
    email = r.text("email").lower()
    if not _EMAIL.match(email):
        raise r.fail("email", f"not an email address: {email!r}")
    province = r.text("province")
    if province not in provinces:
        raise r.fail("province", f"no [provinces.{province}] table")
    time_zone = r.text("time_zone")
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise r.fail("time_zone", f"unknown IANA time zone {time_zone!r}") from None
    office = Office(
        code=code,
        name=r.text("name"),
        email=email,
        province_code=province,
        time_zone=time_zone,
        time_zone_label=r.choice("time_zone_label", ("WIB", "WITA", "WIT")),
        address=r.text("address", ""),
        phone=r.text("phone", ""),
        whatsapp=r.text("whatsapp", ""),
        website=r.text("website", ""),
        sk_number=r.text("sk_number", ""),
        sla_working_days=r.integer("sla_working_days", 2, minimum=1),
        hours=_hours(r.table("hours")),
        complaint_channels=_channels(r),
        imap=_imap(r.table("imap"), env),
        smtp=_smtp(r.table("smtp"), env),
    )
    r.done()
    return office


def _hours(r: _Reader) -> OfficeHours:
    by_day: dict[str, tuple[str, str]] = {}
    for day in r.data:
        if day not in WEEKDAYS:
            raise r.fail(day, f"not a weekday; use {', '.join(WEEKDAYS)}")
        match = _HOURS.match(str(r.text(day)))
        if not match or not all(int(match[i]) < limit for i, limit in ((1, 24), (2, 60), (3, 24), (4, 60))):
            raise r.fail(day, 'must look like "08:00-15:30"')
        start, end = f"{match[1]}:{match[2]}", f"{match[3]}:{match[4]}"
        if end <= start:
            raise r.fail(day, "closing time must be after opening time")
        by_day[day] = (start, end)
    if not by_day:
        raise ConfigError(str(r.file), r.prefix.rstrip("."), "no opening hours on any day")
    return OfficeHours(by_day)


def _channels(r: _Reader) -> tuple[tuple[str, str], ...]:
    r.seen.add("complaint_channels")
    value = r.data.get("complaint_channels")
    if not isinstance(value, list) or not value:
        raise r.fail("complaint_channels", "must be a non-empty list of [label, value] pairs")
    pairs = []
    for i, item in enumerate(value):
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item)):
            raise r.fail(f"complaint_channels[{i}]", "must be a [label, value] pair of strings")
        pairs.append((item[0], item[1]))
    return tuple(pairs)


def _password(r: _Reader, env: dict[str, str], required: bool) -> Secret | None:
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


def _path(r: _Reader, name: str) -> Path:
    path = Path(r.text(name))
    return path if path.is_absolute() else r.file.parent / path


def _ca_file(r: _Reader) -> Path | None:
    if not r.text("ca_file", ""):
        return None
    path = _path(r, "ca_file")
    if not path.is_file():
        raise r.fail("ca_file", f"no such file: {path}")
    return path


def _port(r: _Reader) -> int:
    port = r.integer("port", minimum=1)
    if port > 65535:
        raise r.fail("port", f"must be at most 65535, got {port}")
    return port


def _check_plain(r: _Reader, host: str, tls: str) -> None:
    if tls != "plain":
        return
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise r.fail("tls", f"plain (unencrypted) is only allowed for a loopback host, not {host!r}")


def _imap(r: _Reader, env: dict[str, str]) -> ImapSettings:
    host, tls = r.text("host"), r.choice("tls", IMAP_TLS)
    _check_plain(r, host, tls)
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
    )
    r.done()
    return imap


def _smtp(r: _Reader, env: dict[str, str]) -> SmtpSettings:
    host, tls = r.text("host"), r.choice("tls", SMTP_TLS)
    _check_plain(r, host, tls)
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


def _check_unique(root: _Reader, offices: tuple[Office, ...]) -> None:
    seen: dict[str, str] = {}
    for office in offices:
        for key, value in (("email", office.email), ("imap.username", office.imap.username)):
            marker = f"{key}={value}"
            if marker in seen:
                reason = f"{value} is also used by office {seen[marker]}"
                raise root.fail(f"offices.{office.code}.{key}", reason)
            seen[marker] = office.code
