"""Typed settings, loaded once from `settings.toml` and passed explicitly.

Every problem is a ConfigError naming the file, the dotted key and the reason, so that a
wrong setting stops the start before any mailbox is touched.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from datetime import date
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
    # The folder the office account's sent mail lands in: "auto" (the folder with the \Sent
    # special-use flag, RFC 6154), a folder name, or "" (not watched).
    sent_folder: str = "auto"


@dataclass(frozen=True)
class StaffSettings:
    """Who answers the public for an office, and whether their mail must prove it."""

    addresses: frozenset[str] = frozenset()  # officers' own addresses
    domains: tuple[str, ...] = ()  # every address at these domains (and their subdomains)
    require_authentication: bool = False  # count staff mail only if Authentication-Results pass
    authserv_ids: tuple[str, ...] = ()  # the office's receiving server(s), as named in that header

    def knows(self, address: str) -> bool:
        """Whether an address belongs to the office's staff by the settings (not yet verified)."""
        domain = address.rpartition("@")[2]
        return address in self.addresses or any(domain == d or domain.endswith("." + d) for d in self.domains)


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
class CalendarSettings:
    """Changes to the national working-day calendar: days off added (a decree, an office
    closure; with the reason) and national holidays taken back (the office works)."""

    add_days_off: dict[date, str] = field(default_factory=dict)
    remove_days_off: frozenset[date] = frozenset()

    def merged(self, other: CalendarSettings) -> CalendarSettings:
        return CalendarSettings(
            {**self.add_days_off, **other.add_days_off}, self.remove_days_off | other.remove_days_off
        )


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
    staff: StaffSettings = StaffSettings()
    calendar: CalendarSettings = CalendarSettings()
    head: str = ""  # the head of office: escalation level 1, digests, complaints, the monthly report
    remind_at_share: float | None = None  # this office's own escalation.remind_at_share
    closing_after_days: float = 7.0  # an answered ticket quiet this long is closed
    complaint_addresses: tuple[str, ...] = ()  # mail to these is a complaint (e.g. ipds3571@)
    complaint_sla_working_days: int = 2  # the promise for a complaint

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
    # The province's PST head (escalation level 2, digest of every office of the province), with
    # their own time zone and hours: notices wait for their working hours. "" = no such level.
    head: str = ""
    time_zone: str = ""
    time_zone_label: str = ""
    hours: OfficeHours | None = None


@dataclass(frozen=True)
class NationalLevel:
    """The national level above the provinces (escalation level 3, digest of every office)."""

    name: str
    head: str
    time_zone: str
    time_zone_label: str
    hours: OfficeHours


@dataclass(frozen=True)
class EscalationSettings:
    enabled: bool = True
    remind_at_share: float = 0.75  # remind the office's staff when this share of the time is used
    level2_after_working_days: int = 2  # province PST head, counted from the deadline
    level3_after_working_days: int = 5  # national level, counted from the deadline
    sweep_interval_s: float = 60.0  # how often the daemon looks for notices and digests due


@dataclass(frozen=True)
class DigestSettings:
    local_time: str = "07:30"  # "HH:MM", each manager's own time zone, on their working days
    send_empty: bool = False  # send a digest that has nothing to report
    max_tickets_per_office: int = 25  # tickets listed per office (the counts are always complete)


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
    own_process: bool = False  # true: `run` sends from a child process (mailer/sending.py)


@dataclass(frozen=True)
class ThreadingSettings:
    subject_window_days: float = 14.0  # same sender + same normalised subject joins within this
    reopen_days: float = 30.0  # a mail on a closed ticket reopens it within this; later a new linked one


@dataclass(frozen=True)
class AcknowledgementSettings:
    max_per_sender_per_hour: int = 3  # more new requests from one address get a ticket, no ack
    # An ack goes out at once if its mail arrived less than this long ago, or outside the quiet
    # hours of the office; else it waits until they end (mailer/quiet.py).
    immediate_within_minutes: float = 60.0
    quiet_hours: tuple[str, str] = ("21:00", "06:00")  # office local time; may span midnight


@dataclass(frozen=True)
class AttachmentSettings:
    max_bytes: int = 10_000_000  # an attachment over this is listed (name, size, hash) without its bytes


MAX_ATTACHMENT_BYTES = 500_000_000  # one database value; PostgreSQL's bytea stops at 1 GB


@dataclass(frozen=True)
class ReportSettings:
    send_monthly: bool = True  # the daemon mails last month's report to the heads of office


@dataclass(frozen=True)
class StatusSettings:
    """When `mailer status` says something needs attention (exit 1)."""

    pending_late_after_s: float = 1800.0  # a mail due this long and still not sent: the sender is stuck
    failed_within_h: float = 24.0  # a delivery that failed for good within this many hours


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
    acknowledgement: AcknowledgementSettings = AcknowledgementSettings()
    attachments: AttachmentSettings = AttachmentSettings()
    escalation: EscalationSettings = EscalationSettings()
    digest: DigestSettings = DigestSettings()
    national: NationalLevel | None = None
    calendar: CalendarSettings = CalendarSettings()  # the decree's changes, for every office
    report: ReportSettings = ReportSettings()
    status: StatusSettings = StatusSettings()

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

    def strings(self, name: str) -> list[str]:
        """A list of non-empty strings (empty when absent)."""
        value = self._get(name, list, [])
        if not all(isinstance(item, str) and item.strip() for item in value):
            raise self.fail(name, "must be a list of non-empty strings")
        return [item.strip() for item in value]

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
    calendar = _calendar(root.table("calendar", required=False))
    offices = tuple(replace(o, calendar=calendar.merged(o.calendar)) for o in offices)
    offices = _closing(root.table("closing", required=False), offices_table, offices)
    _check_unique(root, offices)
    provinces = _province_heads(root, provinces)
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
        acknowledgement=_acknowledgement(root.table("acknowledgement", required=False)),
        attachments=_attachments(root.table("attachments", required=False)),
        escalation=_escalation(root.table("escalation", required=False)),
        digest=_digest(root.table("digest", required=False)),
        national=_national(root.table("national", required=False)),
        calendar=calendar,
        report=_report(root.table("report", required=False)),
        status=_status(root.table("status", required=False)),
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
    threading = ThreadingSettings(
        subject_window_days=r.number("subject_window_days", d.subject_window_days),
        reopen_days=r.number("reopen_days", d.reopen_days),
    )
    r.done()
    return threading


def _acknowledgement(r: _Reader) -> AcknowledgementSettings:
    d = AcknowledgementSettings()
    ack = AcknowledgementSettings(
        max_per_sender_per_hour=r.integer("max_per_sender_per_hour", d.max_per_sender_per_hour, minimum=1),
        immediate_within_minutes=r.number("immediate_within_minutes", d.immediate_within_minutes),
        quiet_hours=_quiet_hours(r, d.quiet_hours),
    )
    r.done()
    return ack


def _quiet_hours(r: _Reader, default: tuple[str, str]) -> tuple[str, str]:
    """ "21:00-06:00" (from, until; across midnight when until is earlier), or "" for none."""
    value = str(r.text("quiet_hours", "-".join(default)))
    if value == "":
        return ("00:00", "00:00")  # an empty span: never quiet
    match = _HOURS.match(value)
    if not match or not all(int(match[i]) < limit for i, limit in ((1, 24), (2, 60), (3, 24), (4, 60))):
        raise r.fail("quiet_hours", f'must look like "21:00-06:00" (or "" for none), got {value!r}')
    start, end = f"{match[1]}:{match[2]}", f"{match[3]}:{match[4]}"
    if start == end:
        raise r.fail("quiet_hours", f'from and until are the same ({start}); write "" for no quiet hours')
    return start, end


def _attachments(r: _Reader) -> AttachmentSettings:
    d = AttachmentSettings()
    max_bytes = r.integer("max_bytes", d.max_bytes, minimum=0)
    if max_bytes > MAX_ATTACHMENT_BYTES:
        raise r.fail(
            "max_bytes", f"must be at most {MAX_ATTACHMENT_BYTES} (one database value), got {max_bytes}"
        )
    r.done()
    return AttachmentSettings(max_bytes=max_bytes)


def _provinces(r: _Reader) -> dict[str, Province]:
    provinces = {}
    for code in r.data:
        table = r.table(code)
        provinces[code] = Province(code, table.text("name"))
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
        staff=_staff(r.table("staff", required=False)),
        calendar=_calendar(r.table("calendar", required=False)),
        head=_address(r, "head"),
        remind_at_share=_share(r, None),
        complaint_addresses=_emails(r, "complaint_addresses"),
    )
    complaint_days = r.integer("complaint_sla_working_days", office.sla_working_days, minimum=1)
    office = replace(office, complaint_sla_working_days=complaint_days)
    r.seen.add("closing")  # [offices.X.closing]: read by _closing, with the [closing] default
    r.done()
    return office


def _emails(r: _Reader, name: str) -> tuple[str, ...]:
    addresses = [a.lower() for a in r.strings(name)]
    for i, address in enumerate(addresses):
        if not _EMAIL.match(address):
            raise r.fail(f"{name}[{i}]", f"not an email address: {address!r}")
    return tuple(addresses)


def _closing(r: _Reader, offices_table: _Reader, offices: tuple[Office, ...]) -> tuple[Office, ...]:
    """[closing] after_days for every office, [offices.X.closing] after_days for one."""
    default = r.number("after_days", 7.0)
    r.done()
    out = []
    for office in offices:
        prefix = offices_table.key(office.code) + "."
        own = _Reader(offices_table.file, offices_table.data[office.code], prefix)
        table = own.table("closing", required=False)
        out.append(replace(office, closing_after_days=table.number("after_days", default)))
        table.done()
    return tuple(out)


def _report(r: _Reader) -> ReportSettings:
    report = ReportSettings(send_monthly=r.flag("send_monthly", ReportSettings.send_monthly))
    r.done()
    return report


def _status(r: _Reader) -> StatusSettings:
    d = StatusSettings()
    status = StatusSettings(
        pending_late_after_s=r.number("pending_late_after_s", d.pending_late_after_s),
        failed_within_h=r.number("failed_within_h", d.failed_within_h),
    )
    r.done()
    return status


def _calendar(r: _Reader) -> CalendarSettings:
    """add_days_off = [["2026-12-31", "why"], …]; remove_days_off = ["2026-05-15", …]."""
    r.seen.update(("add_days_off", "remove_days_off"))
    added: dict[date, str] = {}
    value = r.data.get("add_days_off", [])
    if not isinstance(value, list):
        raise r.fail("add_days_off", 'must be a list of ["YYYY-MM-DD", "reason"] pairs')
    for i, item in enumerate(value):
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[1], str) and item[1].strip()):
            raise r.fail(f"add_days_off[{i}]", 'must be a ["YYYY-MM-DD", "reason"] pair')
        added[_date(r, f"add_days_off[{i}]", item[0])] = item[1].strip()
    removed = r.data.get("remove_days_off", [])
    if not isinstance(removed, list):
        raise r.fail("remove_days_off", 'must be a list of "YYYY-MM-DD" dates')
    taken_back = frozenset(_date(r, f"remove_days_off[{i}]", item) for i, item in enumerate(removed))
    r.done()
    return CalendarSettings(added, taken_back)


def _date(r: _Reader, key: str, value: object) -> date:
    if type(value) is date:  # a TOML local date
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise r.fail(key, f"not a date (YYYY-MM-DD): {value!r}") from None


def _staff(r: _Reader) -> StaffSettings:
    addresses = [a.lower() for a in r.strings("addresses")]
    for i, address in enumerate(addresses):
        if not _EMAIL.match(address):
            raise r.fail(f"addresses[{i}]", f"not an email address: {address!r}")
    domains = [d.lower().lstrip("@") for d in r.strings("domains")]
    for i, domain in enumerate(domains):
        if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", domain):
            raise r.fail(f"domains[{i}]", f"not a domain name: {domain!r}")
    required = r.flag("require_authentication", False)
    ids = tuple(x.lower() for x in r.strings("authserv_ids"))
    if required and not ids:
        raise r.fail(
            "authserv_ids",
            "require_authentication needs the authserv-id of the office's receiving server "
            "(only its Authentication-Results are trusted)",
        )
    r.done()
    return StaffSettings(frozenset(addresses), tuple(domains), required, ids)


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
        sent_folder=r.text("sent_folder", "auto"),
    )
    if imap.sent_folder == imap.folder:
        raise r.fail("sent_folder", f"must differ from folder ({imap.folder!r})")
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


# --- escalation and digests --------------------------------------------------------------------


def _address(r: _Reader, name: str, required: bool = False) -> str:
    """An email address (lower-cased); "" when absent and not required."""
    value = str(r.text(name) if required else r.text(name, "")).lower()
    if value and not _EMAIL.match(value):
        raise r.fail(name, f"not an email address: {value!r}")
    return value


def _zone(r: _Reader, required: bool) -> tuple[str, str]:
    """(IANA time zone, label) of a level's manager; ("", "") when absent and not required."""
    zone = str(r.text("time_zone") if required else r.text("time_zone", ""))
    if zone:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise r.fail("time_zone", f"unknown IANA time zone {zone!r}") from None
    label = r.choice("time_zone_label", ("WIB", "WITA", "WIT")) if zone else ""
    return zone, label


def _level(r: _Reader, required: bool) -> tuple[str, str, str, OfficeHours | None]:
    """(head, time zone, label, hours) of a province or the national level. A head needs the
    time zone and hours: nothing is sent to them outside their own working hours."""
    head = _address(r, "head", required)
    zone, label = _zone(r, required or bool(head))
    hours = _hours(r.table("hours")) if (head or "hours" in r.data) else None
    if head and not zone:
        raise r.fail("time_zone", "missing (the head's time zone: notices wait for their working hours)")
    return head, zone, label, hours


def _share(r: _Reader, default: float | None) -> float | None:
    if default is None and "remind_at_share" not in r.data:
        return None
    value = r.number("remind_at_share", default)
    if value >= 1:
        raise r.fail("remind_at_share", f"must be below 1 (a share of the time), got {value}")
    return value


def _province_heads(root: _Reader, provinces: dict[str, Province]) -> dict[str, Province]:
    """The provinces with their PST heads, read after the offices (whose errors come first)."""
    table = _Reader(root.file, root.data["provinces"], "provinces.")
    found = {}
    for code, province in provinces.items():
        r = table.table(code)
        r.seen.add("name")
        head, zone, label, hours = _level(r, required=False)
        found[code] = dataclasses.replace(
            province, head=head, time_zone=zone, time_zone_label=label, hours=hours
        )
        r.done()
    return found


def _escalation(r: _Reader) -> EscalationSettings:
    d = EscalationSettings()
    share = _share(r, d.remind_at_share)
    assert share is not None
    level2 = r.integer("level2_after_working_days", d.level2_after_working_days, minimum=1)
    level3 = r.integer("level3_after_working_days", d.level3_after_working_days, minimum=1)
    if level3 <= level2:
        raise r.fail("level3_after_working_days", f"must be more than level2_after_working_days ({level2})")
    escalation = EscalationSettings(
        enabled=r.flag("enabled", d.enabled),
        remind_at_share=share,
        level2_after_working_days=level2,
        level3_after_working_days=level3,
        sweep_interval_s=r.number("sweep_interval_s", d.sweep_interval_s),
    )
    r.done()
    return escalation


def _digest(r: _Reader) -> DigestSettings:
    d = DigestSettings()
    local_time = str(r.text("local_time", d.local_time))
    match = re.fullmatch(r"(\d{2}):(\d{2})", local_time)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise r.fail("local_time", f'must look like "07:30", got {local_time!r}')
    digest = DigestSettings(
        local_time=local_time,
        send_empty=r.flag("send_empty", d.send_empty),
        max_tickets_per_office=r.integer("max_tickets_per_office", d.max_tickets_per_office, minimum=1),
    )
    r.done()
    return digest


def _national(r: _Reader) -> NationalLevel | None:
    if not r.data:
        return None
    head, zone, label, hours = _level(r, required=True)
    assert hours is not None
    national = NationalLevel(r.text("name"), head, zone, label, hours)
    r.done()
    return national
