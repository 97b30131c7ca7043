"""What an operator sees: the desk's health per office (`mailer status`) and the lists of dead
letters and deliveries (`mailer dead-letters`, `mailer outbox`). Reads only; what an operator
does about it is in repair.py.

Something needs attention (`mailer status` exits 1) when an office has a dead letter not yet
resolved, a delivery failed for good within `status.failed_within_h`, or a mail due for sending
longer than `status.pending_late_after_s` and still not sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from sqlmodel import Session

from mailer.model import Role
from mailer.settings import Settings
from storage import overview
from storage.cursors import mailbox_cursors
from storage.dead_letters import DeadLetterLine, dead_letter_counts
from storage.health import SMTP_CHANNEL, connection_health
from storage.outbox import Delivery
from storage.tables import DeadLetter
from storage.vocabulary import OutboxState, ShownOutboxState, TicketState

OVERDUE = "overdue"  # ticket_overview's count of the open tickets past their deadline
TICKET_COUNTS = (TicketState.OPEN, OVERDUE, TicketState.WAITING, TicketState.ANSWERED, TicketState.CLOSED)


@dataclass(frozen=True)
class Mailbox:
    """A watched folder and its stored cursor (None: never read)."""

    folder: str
    uidvalidity: int | None = None
    last_uid: int | None = None
    advanced_at: datetime | None = None  # when the cursor last moved (a mail was done)
    health: Health | None = None  # how its sessions went (None: the daemon has not tried it)


@dataclass(frozen=True)
class Health:
    """A connection's last working session and, while it fails, since when and why."""

    worked_at: datetime | None
    failing_since: datetime | None
    error: str

    def line(self, now: datetime) -> str:
        """ "worked 2m ago" or "FAILING for 1h 5m (worked 3h ago): login refused …"."""
        worked = f"worked {_age(self.worked_at, now)} ago" if self.worked_at else "never worked"
        if self.failing_since is None:
            return worked
        return f"FAILING for {_age(self.failing_since, now)} ({worked}): {self.error.splitlines()[0][:160]}"


@dataclass
class OfficeStatus:
    """One office at a glance."""

    code: str
    name: str
    mailboxes: list[Mailbox] = field(default_factory=list)
    outbox: dict[str, int] = field(default_factory=dict)  # shown state -> count
    oldest_waiting_at: datetime | None = None  # the oldest pending or deferred mail's creation
    late: int = 0  # due longer than status.pending_late_after_s and not sent
    failed_recent: int = 0  # failed within status.failed_within_h
    dead_letters: int = 0  # not yet resolved
    dead_letters_resolved: int = 0
    tickets: dict[str, int] = field(default_factory=dict)  # state -> count, and "overdue"
    smtp: Health | None = None  # the SMTP server's sessions (None: nothing sent yet)

    def attention(self, settings: Settings, now: datetime) -> list[str]:
        """Why this office needs an operator, one line each ([] when all is well)."""
        found = []
        silent_s = settings.status.mailbox_silent_after_s
        for m in self.mailboxes:
            h = m.health
            if h is None:
                continue
            last = h.worked_at
            if last is None or (now - last).total_seconds() > silent_s:
                since = f"for {_age(last, now)}" if last else "ever"
                why = f": {h.error.splitlines()[0][:160]}" if h.failing_since and h.error else ""
                found.append(f"mailbox {m.folder} not read {since}{why}")
        if self.smtp is not None and self.smtp.failing_since is not None:
            found.append(
                f"SMTP login refused for {_age(self.smtp.failing_since, now)}, mail waits: "
                f"{self.smtp.error.splitlines()[0][:160]}"
            )
        if self.dead_letters:
            found.append(
                f"{self.dead_letters} dead letter(s) not resolved: mailer dead-letters --office {self.code}"
            )
        if self.failed_recent:
            hours = f"{settings.status.failed_within_h:g}"
            found.append(
                f"{self.failed_recent} delivery(ies) failed in the last {hours} h: "
                f"mailer outbox --office {self.code} --state failed"
            )
        if self.late:
            minutes = f"{settings.status.pending_late_after_s / 60:g}"
            found.append(
                f"{self.late} mail(s) due for over {minutes} min and not sent: is `mailer run` running?"
            )
        return found


def collect(s: Session, settings: Settings, now: datetime, office: str | None = None) -> list[OfficeStatus]:
    """The status of every office of the settings (or of one), in the settings' order."""
    late_before = now - timedelta(seconds=settings.status.pending_late_after_s)
    failed_since = now - timedelta(hours=settings.status.failed_within_h)
    found = {o.code: OfficeStatus(o.code, o.name) for o in settings.offices if office in (None, o.code)}
    cursors: dict[str, list[Mailbox]] = {}
    for c in mailbox_cursors(s):
        cursors.setdefault(c.office_code, []).append(
            Mailbox(c.folder, c.uidvalidity, c.last_uid, c.updated_at)
        )
    sessions = {(h.office_code, h.channel): Health(h.last_ok_at, h.failing_since, h.last_error)
                for h in connection_health(s)}  # fmt: skip
    for o in settings.offices:
        if o.code in found:
            box = o.complaint_mailbox.key if o.complaint_mailbox else ""
            boxes = _mailboxes(o.imap.folder, o.imap.sent_folder, box, cursors.get(o.code, []))
            found[o.code].mailboxes = [
                replace(m, health=sessions.get((o.code, _channel(m.folder, o.imap.folder, box))))
                for m in boxes
            ]
            found[o.code].smtp = sessions.get((o.code, SMTP_CHANNEL))
    for row in overview.outbox_overview(s, late_before, failed_since):
        st = found.get(row.office_code)
        if st is None:
            continue
        st.outbox[row.state] = row.total
        st.late += row.late
        st.failed_recent += row.recent_failures
        if (
            row.state in (ShownOutboxState.PENDING, ShownOutboxState.DEFERRED)
            and row.oldest_created_at is not None
        ):
            old = st.oldest_waiting_at
            st.oldest_waiting_at = row.oldest_created_at if old is None else min(old, row.oldest_created_at)
    for code, (unresolved, resolved) in dead_letter_counts(s).items():
        if code in found:
            found[code].dead_letters, found[code].dead_letters_resolved = unresolved, resolved
    for code, states in overview.ticket_overview(s, now).items():
        if code in found:
            found[code].tickets = states
    return list(found.values())


def _mailboxes(inbox: str, sent: str, complaints: str, stored: list[Mailbox]) -> list[Mailbox]:
    """The INBOX first, then the other stored cursors (the Sent folder, found by its flag; the
    complaint mailbox, `address/folder`); a watched folder with no cursor yet is listed empty."""
    ordered = sorted(stored, key=lambda m: (m.folder != inbox, m.folder == complaints, m.folder))
    if not any(m.folder == inbox for m in stored):
        ordered.insert(0, Mailbox(inbox))
    others = [m for m in ordered if m.folder not in (inbox, complaints)]
    if sent and not others:
        ordered.insert(1, Mailbox("Sent (auto)" if sent == "auto" else sent))
    if complaints and not any(m.folder == complaints for m in stored):
        ordered.append(Mailbox(complaints))
    return ordered


def _channel(folder: str, inbox: str, complaints: str) -> str:
    """The connection_health channel of a listed folder (mailer/intake/fetch.py names them by role)."""
    if folder == inbox:
        return f"imap:{Role.INBOX}"
    return f"imap:{Role.COMPLAINT}" if complaints and folder == complaints else f"imap:{Role.SENT}"


def _age(since: datetime | None, now: datetime) -> str:
    """ "3d 4h", "2h 5m", "12m", "40s" (or "-")."""
    if since is None:
        return "-"
    seconds = max(0, int((now - since).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else f"{secs}s"


def text(statuses: list[OfficeStatus], settings: Settings, now: datetime) -> list[str]:
    """The lines `mailer status` prints: per office its mailboxes, outbox, dead letters and
    tickets, then what needs attention."""
    lines = [f"mailer status at {now:%Y-%m-%d %H:%M} UTC"]
    for st in statuses:
        lines.append(f"\n{st.code} {st.name}")
        for m in st.mailboxes:
            session = f"; {m.health.line(now)}" if m.health else ""
            if m.last_uid is None:
                lines.append(f"  mailbox  {m.folder:<14} not read yet{session}")
            else:
                lines.append(
                    f"  mailbox  {m.folder:<14} UIDVALIDITY {m.uidvalidity} last UID {m.last_uid}, "
                    f"advanced {_age(m.advanced_at, now)} ago{session}"
                )
        if st.smtp is not None:
            lines.append(f"  smtp     {st.smtp.line(now)}")
        counts = ", ".join(
            f"{state} {st.outbox[state]}" for state in ShownOutboxState if st.outbox.get(state)
        )
        oldest = f"; oldest waiting {_age(st.oldest_waiting_at, now)}" if st.oldest_waiting_at else ""
        lines.append(f"  outbox   {counts or 'empty'}{oldest}")
        resolved = f" ({st.dead_letters_resolved} resolved)" if st.dead_letters_resolved else ""
        lines.append(f"  dead     {st.dead_letters} not resolved{resolved}")
        t = st.tickets
        lines.append(
            f"  tickets  open {t.get(TicketState.OPEN, 0)} (overdue {t.get(OVERDUE, 0)}), "
            f"waiting {t.get(TicketState.WAITING, 0)}, answered {t.get(TicketState.ANSWERED, 0)}, "
            f"closed {t.get(TicketState.CLOSED, 0)}"
        )
    problems = [(st.code, why) for st in statuses for why in st.attention(settings, now)]
    lines.append("")
    lines.extend(f"ATTENTION {code}: {why}" for code, why in problems)
    if not problems:
        lines.append("OK: nothing needs attention")
    return lines


def as_json(statuses: list[OfficeStatus], settings: Settings, now: datetime) -> dict[str, Any]:
    """`mailer status --json`: the same facts for machines (times ISO 8601 UTC, ages in seconds)."""

    def iso(at: datetime | None) -> str | None:
        return at.isoformat() if at else None

    def age_s(at: datetime | None) -> int | None:
        return int((now - at).total_seconds()) if at else None

    offices = [
        {
            "office": st.code,
            "name": st.name,
            "mailboxes": [
                {
                    "folder": m.folder,
                    "uidvalidity": m.uidvalidity,
                    "last_uid": m.last_uid,
                    "advanced_at": iso(m.advanced_at),
                    **_health_json(m.health, iso),
                }
                for m in st.mailboxes
            ],
            "smtp": _health_json(st.smtp, iso),
            "outbox": {state: st.outbox.get(state, 0) for state in ShownOutboxState},
            "oldest_waiting_age_s": age_s(st.oldest_waiting_at),
            "late": st.late,
            "failed_recent": st.failed_recent,
            "dead_letters": st.dead_letters,
            "dead_letters_resolved": st.dead_letters_resolved,
            "tickets": {k: st.tickets.get(k, 0) for k in TICKET_COUNTS},
            "attention": st.attention(settings, now),
        }
        for st in statuses
    ]
    return {"at": now.isoformat(), "ok": not any(o["attention"] for o in offices), "offices": offices}


def _health_json(h: Health | None, iso: Callable[[datetime | None], str | None]) -> dict[str, Any]:
    """{"worked_at", "failing_since", "last_error"} (all None before the daemon tried)."""
    if h is None:
        return {"worked_at": None, "failing_since": None, "last_error": None}
    return {
        "worked_at": iso(h.worked_at),
        "failing_since": iso(h.failing_since),
        "last_error": h.error or None,
    }


def dead_letter_lines(rows: list[DeadLetterLine], now: datetime) -> list[str]:
    """`mailer dead-letters`: one line each (id, office, folder, UID, step, the reason's first
    line, size, age), then a count."""
    lines = [
        f"{'ID':>5} {'OFFICE':<6} {'FOLDER/UIDVALIDITY/UID':<26} {'STEP':<11} {'SIZE':>8} {'AGE':>7}  REASON"
    ]
    for d in rows:
        where = f"{d.folder}/{d.uidvalidity}/{d.uid}"
        reason = (d.error.splitlines() or [""])[0][:90]
        done = f"  [resolved: {d.resolution}]" if d.resolved_at else ""
        tried = f" (retried {d.retries}x)" if d.retries and not d.resolved_at else ""
        lines.append(
            f"{d.id:>5} {d.office_code:<6} {where:<26} {d.step:<11} {d.size:>8} "
            f"{_age(d.created_at, now):>7}  {reason}{tried}{done}"
        )
    lines.append(f"({len(rows)} dead letter{'s' if len(rows) != 1 else ''})")
    return lines


def dead_letter_detail(d: DeadLetter, now: datetime) -> list[str]:
    """`mailer dead-letters show ID`: the row, the whole reason and the mail's header block."""
    raw: bytes = d.raw
    split = raw.find(b"\n\n") if b"\r\n\r\n" not in raw else raw.find(b"\r\n\r\n")
    head = raw[: split if split >= 0 else 4000][:4000].decode("utf-8", "replace")
    lines = [
        f"dead letter {d.id}  office {d.office_code}  {d.folder} UIDVALIDITY {d.uidvalidity} UID {d.uid}",
        f"  failed at : {d.created_at:%Y-%m-%d %H:%M} UTC ({_age(d.created_at, now)} ago), step {d.step}",
        f"  size      : {len(raw):,} bytes, sha256 {d.raw_sha256}",
        f"  retries   : {d.retries}",
        f"  resolved  : {f'{d.resolved_at:%Y-%m-%d %H:%M} UTC: {d.resolution}' if d.resolved_at else 'no'}",
        "  reason    :",
        *(f"    {line}" for line in d.error.splitlines()),
        "  header block (as received; --raw prints the whole mail):",
        *(f"    {line}" for line in head.splitlines()[:60]),
    ]
    return lines


def delivery_lines(rows: list[Delivery], now: datetime, zones: Mapping[str, tuple[tzinfo, str]]) -> list[str]:
    """`mailer outbox`: one line each (id, office, ticket, kind, to, state, attempts, next
    attempt or when it ended in the office's local time as `mailer tickets` shows it, last
    error), then a count. `zones`: each office's time zone and its label (WIB); UTC otherwise."""
    lines = [
        f"{'ID':>6} {'OFFICE':<6} {'TICKET':<21} {'KIND':<8} {'STATE':<8} {'TRIES':>5} "
        f"{'NEXT/DONE (local)':<20}  TO / LAST ERROR"
    ]
    for d in rows:
        sent, failed = d.state == OutboxState.SENT, d.state == OutboxState.FAILED
        when = d.sent_at if sent else d.failed_at if failed else d.next_attempt_at
        tz, label = zones.get(d.office_code, (UTC, "UTC"))
        stamp = f"{when.astimezone(tz):%Y-%m-%d %H:%M} {label}" if when else "-"
        error = f" / {d.last_error.splitlines()[0][:80]}" if d.last_error else ""
        lines.append(
            f"{d.id:>6} {d.office_code:<6} {d.ticket_ref or '-':<21} {d.kind:<8} {d.state:<8} "
            f"{d.attempts:>5} {stamp:<20}  {d.envelope_to}{error}"
        )
    lines.append(f"({len(rows)} deliver{'ies' if len(rows) != 1 else 'y'})")
    return lines
