"""The small top-level tables of `settings.toml`, one dataclass each: [daemon], [outbox],
[threading], [acknowledgement], [complaints], [attachments], [escalation], [digest], [report],
[status].

Each dataclass is its table's schema: a field is a key of the same name, its default the value
when the key is absent. `TableReader.fill` reads the plain fields (true/false, an integer of
at least 1, a number above 0); a reader here reads and checks the others first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailer.settings.reader import TableReader
from mailer.settings.working_time import parse_span

MAX_ATTACHMENT_BYTES = 500_000_000  # one database value; PostgreSQL's bytea stops at 1 GB
MIN_FETCH_BYTES = 1_000_000  # [daemon] fetch_batch_bytes: below this, FETCH round trips dominate
MIN_PARSE_BYTES = 1_000_000  # [daemon] max_parse_bytes: ordinary mail with a photo must be read


@dataclass(frozen=True)
class DaemonSettings:
    poll_interval_s: float = 60.0  # when the server has no IDLE
    idle_timeout_s: float = 600.0  # re-issue IDLE at least this often (RFC 2177: < 29 min)
    fetch_batch: int = 200  # UIDs per FETCH
    # Bytes per FETCH (RFC822.SIZE, asked first), so a backlog of big mails is read a few at a
    # time; a mail bigger than this is fetched alone.
    fetch_batch_bytes: int = 20_000_000
    # A mail bigger than this is not unpacked: its header and the start of its text are read,
    # its attachments not; it is stored whole as it arrived (mailer/intake/parse.py, parse_big).
    max_parse_bytes: int = 15_000_000
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
    own_process: bool = False  # true: `run` sends from a child process (mailer/delivery/sending.py)


@dataclass(frozen=True)
class ThreadingSettings:
    subject_window_days: float = 14.0  # same sender + same normalised subject joins within this
    reopen_days: float = 30.0  # a mail on a closed ticket reopens it within this; later a new linked one


@dataclass(frozen=True)
class AcknowledgementSettings:
    # At most this many acks an hour to one address, caused by one author (From) and by one
    # envelope sender (Return-Path); more requests get a ticket, no ack (mailer/decide/floods.py)
    max_per_sender_per_hour: int = 3
    max_per_office_per_hour: int = 30  # acks of one office in an hour, to everyone
    # An ack goes out at once if its mail arrived less than this long ago, or outside the quiet
    # hours of the office; else it waits until they end (mailer/decide/quiet.py).
    immediate_within_minutes: float = 60.0
    quiet_hours: tuple[str, str] = ("21:00", "06:00")  # office local time; may span midnight


@dataclass(frozen=True)
class ComplaintSettings:
    """The notices of complaints to the head of office: at most this many an hour caused by one
    author or envelope sender, and for the office; past them one line in the head's digest."""

    max_notices_per_sender_per_hour: int = 2
    max_notices_per_office_per_hour: int = 10


@dataclass(frozen=True)
class AttachmentSettings:
    max_bytes: int = 10_000_000  # an attachment over this is listed (name, size, hash) without its bytes


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
class ReportSettings:
    send_monthly: bool = True  # the daemon mails last month's report to the heads of office


@dataclass(frozen=True)
class StatusSettings:
    """When `mailer status` says something needs attention (exit 1)."""

    pending_late_after_s: float = 1800.0  # a mail due this long and still not sent: the sender is stuck
    failed_within_h: float = 24.0  # a delivery that failed for good within this many hours
    # a mailbox whose last working session is older than this (or failing this long)
    mailbox_silent_after_s: float = 1800.0


@dataclass(frozen=True)
class MetricsSettings:
    """Where `mailer run` serves its Prometheus metrics (`[metrics] listen`); off when empty."""

    host: str = ""
    port: int = 0

    @property
    def enabled(self) -> bool:
        return bool(self.host)


def read_metrics(r: TableReader) -> MetricsSettings:
    """[metrics] listen = "127.0.0.1:9464" (host or [IPv6]:port), or "" for none."""
    listen = r.text("listen", "")
    r.done()
    if not listen:
        return MetricsSettings()
    host, sep, port = listen.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise r.fail("listen", f'must be "host:port" (e.g. "127.0.0.1:9464") or "", got {listen!r}')
    return MetricsSettings(host, int(port))


def read_daemon(r: TableReader) -> DaemonSettings:
    d = DaemonSettings()
    idle = r.number("idle_timeout_s", d.idle_timeout_s)
    if idle >= 29 * 60:
        raise r.fail("idle_timeout_s", "must stay under 29 minutes (RFC 2177)")
    low, high = r.number("reconnect_min_s", d.reconnect_min_s), r.number("reconnect_max_s", d.reconnect_max_s)
    if high < low:
        raise r.fail("reconnect_max_s", "must not be below reconnect_min_s")
    batch_bytes = r.integer("fetch_batch_bytes", d.fetch_batch_bytes, minimum=MIN_FETCH_BYTES)
    parse_bytes = r.integer("max_parse_bytes", d.max_parse_bytes, minimum=MIN_PARSE_BYTES)
    return r.fill(
        DaemonSettings,
        idle_timeout_s=idle,
        reconnect_min_s=low,
        reconnect_max_s=high,
        fetch_batch_bytes=batch_bytes,
        max_parse_bytes=parse_bytes,
    )


def read_outbox(r: TableReader) -> OutboxSettings:
    return r.fill(OutboxSettings)


def read_threading(r: TableReader) -> ThreadingSettings:
    return r.fill(ThreadingSettings)


def read_acknowledgement(r: TableReader) -> AcknowledgementSettings:
    d = AcknowledgementSettings()
    per_sender = r.integer("max_per_sender_per_hour", d.max_per_sender_per_hour, minimum=1)
    per_office = r.integer("max_per_office_per_hour", d.max_per_office_per_hour, minimum=1)
    if per_office < per_sender:
        raise r.fail("max_per_office_per_hour", f"must not be below max_per_sender_per_hour ({per_sender})")
    return r.fill(
        AcknowledgementSettings,
        max_per_sender_per_hour=per_sender,
        max_per_office_per_hour=per_office,
        immediate_within_minutes=r.number("immediate_within_minutes", d.immediate_within_minutes),
        quiet_hours=_quiet_hours(r, d.quiet_hours),
    )


def read_complaints(r: TableReader) -> ComplaintSettings:
    d = ComplaintSettings()
    per_sender = r.integer("max_notices_per_sender_per_hour", d.max_notices_per_sender_per_hour, minimum=1)
    per_office = r.integer("max_notices_per_office_per_hour", d.max_notices_per_office_per_hour, minimum=1)
    if per_office < per_sender:
        why = f"must not be below max_notices_per_sender_per_hour ({per_sender})"
        raise r.fail("max_notices_per_office_per_hour", why)
    return r.fill(
        ComplaintSettings,
        max_notices_per_sender_per_hour=per_sender,
        max_notices_per_office_per_hour=per_office,
    )


def _quiet_hours(r: TableReader, default: tuple[str, str]) -> tuple[str, str]:
    """ "21:00-06:00" (from, until; across midnight when until is earlier), or "" for none."""
    value = str(r.text("quiet_hours", "-".join(default)))
    if value == "":
        return ("00:00", "00:00")  # an empty span: never quiet
    span = parse_span(value)
    if span is None:
        raise r.fail("quiet_hours", f'must look like "21:00-06:00" (or "" for none), got {value!r}')
    start, end = span
    if start == end:
        raise r.fail("quiet_hours", f'from and until are the same ({start}); write "" for no quiet hours')
    return start, end


def read_attachments(r: TableReader) -> AttachmentSettings:
    max_bytes = r.integer("max_bytes", AttachmentSettings.max_bytes, minimum=0)
    if max_bytes > MAX_ATTACHMENT_BYTES:
        raise r.fail(
            "max_bytes", f"must be at most {MAX_ATTACHMENT_BYTES} (one database value), got {max_bytes}"
        )
    return r.fill(AttachmentSettings, max_bytes=max_bytes)


def read_escalation(r: TableReader) -> EscalationSettings:
    d = EscalationSettings()
    share = remind_share(r, d.remind_at_share)
    level2 = r.integer("level2_after_working_days", d.level2_after_working_days, minimum=1)
    level3 = r.integer("level3_after_working_days", d.level3_after_working_days, minimum=1)
    if level3 <= level2:
        raise r.fail("level3_after_working_days", f"must be more than level2_after_working_days ({level2})")
    return r.fill(
        EscalationSettings,
        remind_at_share=share,
        level2_after_working_days=level2,
        level3_after_working_days=level3,
    )


def remind_share(r: TableReader, default: float | None) -> float | None:
    """remind_at_share: below 1; None when absent and there is no default (an office's own)."""
    if default is None and "remind_at_share" not in r.data:
        return None
    value = r.number("remind_at_share", default)
    if value >= 1:
        raise r.fail("remind_at_share", f"must be below 1 (a share of the time), got {value}")
    return value


def read_digest(r: TableReader) -> DigestSettings:
    local_time = str(r.text("local_time", DigestSettings.local_time))
    match = re.fullmatch(r"(\d{2}):(\d{2})", local_time)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise r.fail("local_time", f'must look like "07:30", got {local_time!r}')
    return r.fill(DigestSettings, local_time=local_time)


def read_report(r: TableReader) -> ReportSettings:
    return r.fill(ReportSettings)


def read_status(r: TableReader, daemon: DaemonSettings) -> StatusSettings:
    """[status]; a working mailbox notes itself after every IDLE round or poll, so it is not
    "silent" before the longest of those and a minute more have passed."""
    silent = r.number("mailbox_silent_after_s", StatusSettings.mailbox_silent_after_s)
    least = max(daemon.idle_timeout_s, daemon.poll_interval_s) + 60
    if silent < least:
        raise r.fail(
            "mailbox_silent_after_s",
            f"must be at least daemon.idle_timeout_s / poll_interval_s + 60 ({least:g} s), "
            f"or a working mailbox would look silent; got {silent:g}",
        )
    return r.fill(StatusSettings, mailbox_silent_after_s=silent)
