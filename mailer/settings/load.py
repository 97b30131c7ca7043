"""`load_settings`: the whole `settings.toml` read into one `Settings`, and the tables no other
module reads: [storage] (the database) and [log].

The order of the reads is the order of the errors: the offices' (what a new office gets wrong)
before the heads above them, the unknown keys of a table last.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

from mailer.errors import ConfigError
from mailer.settings.levels import NationalLevel, Province, read_national, read_province_heads, read_provinces
from mailer.settings.offices import Office, check_unique, read_closing, read_offices
from mailer.settings.reader import TableReader
from mailer.settings.sections import (
    AcknowledgementSettings,
    AttachmentSettings,
    ComplaintSettings,
    DaemonSettings,
    DigestSettings,
    EscalationSettings,
    MetricsSettings,
    OutboxSettings,
    ReportSettings,
    StatusSettings,
    ThreadingSettings,
    read_acknowledgement,
    read_attachments,
    read_complaints,
    read_daemon,
    read_digest,
    read_escalation,
    read_metrics,
    read_outbox,
    read_report,
    read_status,
    read_threading,
)
from mailer.settings.working_time import CalendarSettings, read_calendar


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
    threading: ThreadingSettings = field(default_factory=ThreadingSettings)
    acknowledgement: AcknowledgementSettings = field(default_factory=AcknowledgementSettings)
    complaints: ComplaintSettings = field(default_factory=ComplaintSettings)
    attachments: AttachmentSettings = field(default_factory=AttachmentSettings)
    escalation: EscalationSettings = field(default_factory=EscalationSettings)
    digest: DigestSettings = field(default_factory=DigestSettings)
    national: NationalLevel | None = None
    # the decree's changes, for every office (each office's calendar has them merged in)
    calendar: CalendarSettings = field(default_factory=CalendarSettings)
    report: ReportSettings = field(default_factory=ReportSettings)
    status: StatusSettings = field(default_factory=StatusSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)

    @cached_property  # read per mail and per closing: computed once (a frozen value)
    def own_addresses(self) -> frozenset[str]:
        """The desk's own addresses: every office's mailbox and complaint addresses (no
        automatic mail goes to them, and mail from them is never a person's)."""
        return frozenset(o.email for o in self.offices) | {
            a for o in self.offices for a in o.complaint_addresses
        }

    def office(self, code: str) -> Office:
        for office in self.offices:
            if office.code == code:
                return office
        raise KeyError(code)


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
    root = TableReader(file, data)
    storage = root.table("storage")
    log = root.table("log", required=False)
    provinces = read_provinces(root.table("provinces"))
    offices_table = root.table("offices")
    offices = read_offices(offices_table, provinces, env)
    calendar = read_calendar(root.table("calendar", required=False))
    offices = tuple(replace(o, calendar=calendar.merged(o.calendar)) for o in offices)
    offices = read_closing(root.table("closing", required=False), offices_table, offices)
    check_unique(offices_table, offices)
    provinces = read_province_heads(root.table("provinces"), provinces)
    daemon = read_daemon(root.table("daemon", required=False))
    settings = Settings(
        file=file,
        database_url=_database_url(storage, file.parent),
        log_format=log.choice("format", ("auto", "json", "console"), "auto"),
        log_level=log.choice("level", ("debug", "info", "warning", "error"), "info"),
        daemon=daemon,
        outbox=read_outbox(root.table("outbox", required=False)),
        offices=offices,
        provinces=provinces,
        threading=read_threading(root.table("threading", required=False)),
        acknowledgement=read_acknowledgement(root.table("acknowledgement", required=False)),
        complaints=read_complaints(root.table("complaints", required=False)),
        attachments=read_attachments(root.table("attachments", required=False)),
        escalation=read_escalation(root.table("escalation", required=False)),
        digest=read_digest(root.table("digest", required=False)),
        national=read_national(root.table("national", required=False)),
        calendar=calendar,
        report=read_report(root.table("report", required=False)),
        status=read_status(root.table("status", required=False), daemon),
        metrics=read_metrics(root.table("metrics", required=False)),
    )
    for reader in (storage, log, offices_table, root):
        reader.done()
    return settings


def _database_url(storage: TableReader, base: Path) -> str:
    """[storage] url (SQLite or PostgreSQL), else path: a SQLite file beside the settings."""
    url = storage.text("url", "")
    if url:
        if not url.startswith(("sqlite:", "postgresql")):
            raise storage.fail("url", "only sqlite:/// and postgresql+psycopg:// URLs are supported")
        return str(url)
    path = Path(storage.text("path"))
    return f"sqlite:///{path if path.is_absolute() else base / path}"
