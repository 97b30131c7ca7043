"""Typed settings, loaded once from `settings.toml` and passed explicitly.

Every problem is a ConfigError naming the file, the dotted key and the reason, so that a
wrong setting stops the start before any mailbox is touched. Where each table is read:

    load.py          the whole file, in order; [storage], [log]; `Settings`
    offices.py       [offices.CODE] and its [….sla], [….staff], [….complaint_mailbox], [….closing];
                     [closing]
    servers.py       [offices.CODE.imap], [offices.CODE.smtp]: host, TLS, password
    levels.py        [provinces.CODE], [national]: the heads above the offices
    working_time.py  every [….hours]; [calendar], [offices.CODE.calendar]
    sections.py      [daemon], [outbox], [threading], [acknowledgement], [complaints],
                     [attachments], [escalation], [digest], [report], [status], [metrics]
    reader.py        `TableReader`: typed access to one table, with the file/key/reason errors
"""

from mailer.settings.levels import NationalLevel, Province
from mailer.settings.load import Settings, load_settings
from mailer.settings.offices import AfterWait, ComplaintMailbox, Office, Promise, StaffSettings
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
)
from mailer.settings.servers import ImapSettings, Secret, SmtpSettings
from mailer.settings.working_time import WEEKDAYS, CalendarSettings, OfficeHours

__all__ = [
    "WEEKDAYS",
    "AcknowledgementSettings",
    "AfterWait",
    "AttachmentSettings",
    "CalendarSettings",
    "ComplaintMailbox",
    "ComplaintSettings",
    "DaemonSettings",
    "DigestSettings",
    "EscalationSettings",
    "ImapSettings",
    "MetricsSettings",
    "NationalLevel",
    "Office",
    "OfficeHours",
    "OutboxSettings",
    "Promise",
    "Province",
    "ReportSettings",
    "Secret",
    "Settings",
    "SmtpSettings",
    "StaffSettings",
    "StatusSettings",
    "ThreadingSettings",
    "load_settings",
]
