"""Reminders, escalation notices and digests as mail: `templates/id/{notice,digest}.*.j2`
(Indonesian: they go to BPS staff and managers), hand-built MIME like the acknowledgement.

Each says it is automatic (`Auto-Submitted: auto-generated`, `X-Auto-Response-Suppress: All`)
and ours (`X-PST-Mailer`, `X-Loop`): a reminder to the office mailbox lands in the INBOX the
daemon reads, and rules.decide files it as our own mail come back, never as a request.
"""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime, formataddr

from babel.dates import format_date
from babel.dates import format_datetime as babel_datetime

from mailer.decide.rules import OWN_MAILER
from mailer.delivery.render import Outgoing, Renderer, build_mime, deadline_text, new_message_id
from mailer.settings import Office
from mailer.timed.digest import Digest, Line
from mailer.timed.escalate import Person
from storage.vocabulary import MessageKind, NoticeLevel

LANG = "id"
TITLES = {
    NoticeLevel.REMINDER: "Pengingat",
    NoticeLevel.OFFICE_HEAD: "Eskalasi",
    NoticeLevel.PROVINCE_HEAD: "Eskalasi tingkat provinsi",
    NoticeLevel.NATIONAL: "Eskalasi tingkat nasional",
}


def moment_text(when: datetime, office: Office) -> str:
    """ "Rabu, 25 November 2026 pukul 10.00 WIB" in the office's time zone."""
    return deadline_text(when, office, LANG)


def due_text(line: Line) -> str:
    """A ticket's deadline as its office reads it (Line.due_at is in the office's zone):
    "Rabu, 25 November 2026 pukul 10.00 WIB"."""
    return f"{babel_datetime(line.due_at, _LONG, locale=LANG)} {line.zone_label}"


_LONG = "EEEE, d MMMM y 'pukul' HH.mm"


def _intro(level: NoticeLevel, office: Office, share: float, days: int, count: int) -> str:
    them = "Tiket berikut" if count > 1 else "Tiket ini"
    if level is NoticeLevel.REMINDER:
        return (
            f"{them} sudah memakai {round(share * 100)}% waktu layanannya ({office.sla_working_days} "
            "hari kerja) dan belum dijawab. Mohon dijawab sebelum tenggat."
        )
    if level is NoticeLevel.OFFICE_HEAD:
        return (
            f"{them} telah melewati tenggat standar pelayanan {office.name} ({office.sla_working_days} "
            "hari kerja setelah email diterima) dan belum dijawab. Mohon arahan agar segera dijawab."
        )
    return (
        f"{them} di {office.name} belum dijawab {days} hari kerja setelah tenggat standar pelayanan "
        f"({office.sla_working_days} hari kerja). Mohon arahan agar segera dijawab."
    )


def _headers(
    sender: Office, to: Person, subject: str, now: datetime, message_id: str, kind: str, ticket: str | None
) -> list[tuple[str, str]]:
    return [
        ("From", formataddr((sender.desk_name, sender.email))),
        ("To", formataddr((to.name, to.address))),
        ("Subject", subject),
        ("Date", format_datetime(now.astimezone(to.calendar.tz))),
        ("Message-ID", f"<{message_id}>"),
        ("Auto-Submitted", "auto-generated"),
        ("X-Auto-Response-Suppress", "All"),
        ("X-Loop", sender.email),
        ("X-PST-Mailer", OWN_MAILER),
        ("X-PST-Notice", kind),
        *([("X-PST-Ticket", ticket)] if ticket else []),
        ("Content-Language", LANG),
    ]


def notice(
    renderer: Renderer,
    office: Office,
    level: NoticeLevel,
    to: Person,
    lines: list[Line],
    now: datetime,
    share: float,
    days_after: int,
) -> Outgoing:
    """One notice of `level` to `to` about one or more tickets of `office` (one mail per
    recipient and sweep, however many tickets reached the level at once)."""
    context = {
        "office": office,
        "recipient": to,
        "lines": lines,
        "title": TITLES[level],
        "intro": _intro(level, office, share, days_after, len(lines)),
        "due_text": due_text,
    }
    subject = renderer.env.get_template(f"{LANG}/notice.subject.j2").render(context)
    context["subject_line"] = " ".join(subject.split())
    subject, text, html = renderer.render("notice", LANG, context)
    message_id = new_message_id(office)
    ticket = lines[0].ref if len(lines) == 1 else None
    headers = _headers(office, to, subject, now, message_id, level.label, ticket)
    return Outgoing(message_id, office.email, to.address, subject, text, build_mime(headers, text, html))


def digest_parts(renderer: Renderer, digest: Digest, now: datetime) -> tuple[str, str, str]:
    """(subject, text, html) of a manager's digest as of `now`."""
    manager = digest.manager
    overdue = sum(s.overdue for s in digest.sections)
    context = {
        "digest": digest,
        "manager": manager,
        "overdue": overdue,
        "due_today": digest.total - overdue,
        "day_text": format_date(digest.day, "EEEE, d MMMM y", locale=LANG),
        "at_text": moment_text(now, manager.person.calendar),
        "due_text": due_text,
    }
    subject = renderer.env.get_template(f"{LANG}/digest.subject.j2").render(context)
    context["subject_line"] = " ".join(subject.split())
    return renderer.render("digest", LANG, context)


def digest_mail(renderer: Renderer, digest: Digest, now: datetime) -> Outgoing:
    """The digest of one manager for one day, sent from the first office it covers."""
    manager, sender = digest.manager, digest.manager.sender
    subject, text, html = digest_parts(renderer, digest, now)
    message_id = new_message_id(sender)
    headers = _headers(sender, manager.person, subject, now, message_id, MessageKind.DIGEST, None)
    raw = build_mime(headers, text, html)
    return Outgoing(message_id, sender.email, manager.person.address, subject, text, raw)
