"""The monthly report per office: what came in, how fast it was answered, what is left, and
how the public rated it. `mailer report --month 2026-11 [--office 3514 | --province 3500]`.

Figures for month M of office X (its own time zone; spam and duplicates left out):
- requests, complaints: tickets received in M, by kind.
- answered within the promise: of those, the ones whose first response came no later than the
  promise (received + the office's working days for the kind, waiting for the requester not
  counted, as sla.due_at computes it); count and % of the tickets received in M.
- first response, median and 90th percentile, in working hours: office hours between receipt
  and first response (sla.office_time), of the tickets received in M that have one. The median
  is statistics.median; the 90th percentile is the nearest rank (the ⌈0.9·n⌉-th smallest).
- open backlog: tickets received before the end of M that were open or waiting at its end
  (their state after their last event before then).
- ratings given in M: count, average (1–4), and the SKM-style index = average × 25 (25–100)
  with its grade (A ≥ 88.31, B ≥ 76.61, C ≥ 65.00, else D; PermenPAN-RB 14/2017), see rating.py.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from babel.dates import format_date
from babel.numbers import format_decimal
from markupsafe import Markup, escape
from sqlalchemy import Engine
from sqlmodel import Session

from mailer import log
from mailer.clock import Clock
from mailer.decide import lifecycle, rating, sla
from mailer.delivery import guard
from mailer.delivery.queue import enqueue
from mailer.delivery.render import Renderer
from mailer.settings import Office, Settings
from storage import db, monthly_report, outbox, ratings
from storage.vocabulary import MessageKind, Resolution, TicketKind, TicketState

logger = log.get(__name__)
LEFT_OUT = (Resolution.SPAM, Resolution.DUPLICATE)  # resolutions that were never a consultation
CSV_COLUMNS = (
    "office", "name", "month", "requests", "complaints", "answered_within", "answered_within_pct",
    "first_response_median_h", "first_response_p90_h", "open_backlog", "ratings", "rating_average",
    "skm_index", "skm_grade",
)  # fmt: skip


@dataclass
class OfficeMonth:
    """One office's figures for one month (see the module docstring for each)."""

    code: str
    name: str
    month: str
    requests: int = 0
    complaints: int = 0
    within: int = 0
    backlog: int = 0
    response_hours: list[float] = field(default_factory=list)
    scores: list[int] = field(default_factory=list)
    daily: dict[int, tuple[int, int]] = field(default_factory=dict)  # day → (requests, complaints)

    @property
    def received(self) -> int:
        return self.requests + self.complaints

    @property
    def within_pct(self) -> float | None:
        return 100.0 * self.within / self.received if self.received else None

    @property
    def median_h(self) -> float | None:
        return statistics.median(self.response_hours) if self.response_hours else None

    @property
    def p90_h(self) -> float | None:
        if not self.response_hours:
            return None
        ordered = sorted(self.response_hours)
        return ordered[math.ceil(0.9 * len(ordered)) - 1]

    @property
    def ratings(self) -> rating.Summary:
        return rating.summarise(self.scores)

    def row(self) -> dict[str, str]:
        """The CSV row: numbers with a dot, hours and index to 2 decimals, "" where none."""
        r = self.ratings

        def num(value: float | None) -> str:
            return "" if value is None else f"{value:.2f}"

        return {
            "office": self.code, "name": self.name, "month": self.month,
            "requests": str(self.requests), "complaints": str(self.complaints),
            "answered_within": str(self.within), "answered_within_pct": num(self.within_pct),
            "first_response_median_h": num(self.median_h), "first_response_p90_h": num(self.p90_h),
            "open_backlog": str(self.backlog), "ratings": str(r.count),
            "rating_average": num(r.average), "skm_index": num(r.index), "skm_grade": r.grade,
        }  # fmt: skip


def parse_month(text: str) -> tuple[int, int]:
    """ "2026-11" → (2026, 11); ValueError otherwise."""
    year, _, month = text.partition("-")
    if not (
        len(year) == 4 and year.isdigit() and month.isdigit() and 1 <= int(month) <= 12 and len(month) == 2
    ):
        raise ValueError(f"not a month (YYYY-MM): {text!r}")
    return int(year), int(month)


def month_bounds(office: Office, month: str) -> tuple[datetime, datetime]:
    """[start, end) of a month in the office's time zone."""
    year, number = parse_month(month)
    start = datetime.combine(date(year, number, 1), time(0), office.tz)
    following = date(year + number // 12, number % 12 + 1, 1)
    return start, datetime.combine(following, time(0), office.tz)


def previous_month(day: date) -> str:
    first = day.replace(day=1) - timedelta(days=1)
    return f"{first.year:04d}-{first.month:02d}"


def compute(s: Session, office: Office, month: str) -> OfficeMonth:
    """One office's figures for a month, from the stored tickets, events and ratings."""
    start, end = month_bounds(office, month)
    out = OfficeMonth(office.code, office.name, month)
    histories = monthly_report.ticket_histories(s, office.code, end)
    for t in monthly_report.tickets_received_before(s, office.code, end):
        assert t.id is not None
        history = histories.get(t.id, [])
        state = history[-1][2] if history else TicketState.OPEN
        if t.resolution in LEFT_OUT:
            continue
        if state in (TicketState.OPEN, TicketState.WAITING):
            out.backlog += 1
        if t.received_at < start:
            continue
        complaint = t.kind == TicketKind.COMPLAINT
        day = t.received_at.astimezone(office.tz).day
        requests, complaints = out.daily.get(day, (0, 0))
        out.daily[day] = (requests + (not complaint), complaints + complaint)
        out.complaints += complaint
        out.requests += not complaint
        if t.first_response_at is None:
            continue
        before = [h for h in history if h[0] <= t.first_response_at]
        basis, paused = lifecycle.clock_basis(t.received_at, before, t.first_response_at)
        days = office.complaint_sla_working_days if complaint else office.sla_working_days
        promise = sla.due_at(office, basis, working_days=days, paused=paused)
        out.within += int(t.first_response_at <= promise)
        hours = sla.office_time(office, t.received_at, t.first_response_at).total_seconds() / 3600
        out.response_hours.append(hours)
    out.scores = ratings.ratings_between(s, office.code, start, end)
    return out


def select_offices(settings: Settings, office: str | None, province: str | None) -> list[Office]:
    """The offices of a report: one, a province's, or all. ConfigError-free: ValueError if unknown."""
    if office:
        return [settings.office(office)]
    if province:
        found = [o for o in settings.offices if o.province_code == province]
        if not found:
            raise KeyError(province)
        return found
    return list(settings.offices)


def write_csv(path: Path, months: list[OfficeMonth]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for m in months:
            writer.writerow(m.row())


# --- the HTML page: tables and inline SVG charts (no external assets) ---------------------

_W, _H, _PAD = 620, 180, 28


def daily_chart(m: OfficeMonth, days_in_month: int) -> Markup:
    """Tickets received per day of the month, requests (blue) with complaints (red) stacked."""
    top = max([r + c for r, c in m.daily.values()] + [1])
    bar = (_W - 2 * _PAD) / days_in_month
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart daily" role="img" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" data-office="{m.code}">',
        f"<title>Tiket diterima per hari, {escape(m.name)}, {month_text(m.month)}</title>",
        f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" stroke="#52606d"/>',
        f'<text x="{_PAD - 4}" y="{_PAD}" text-anchor="end" font-size="10">{top}</text>',
    ]
    scale = (_H - 2 * _PAD) / top
    for day in range(1, days_in_month + 1):
        requests, complaints = m.daily.get(day, (0, 0))
        x = _PAD + (day - 1) * bar + 1
        base: float = _H - _PAD
        bars = (
            (requests, "#0b4f8a", TicketKind.REQUEST, "permintaan"),
            (complaints, "#c0392b", TicketKind.COMPLAINT, "pengaduan"),
        )
        for count, colour, kind, word in bars:
            if count:
                height = count * scale
                base -= height
                parts.append(
                    f'<rect class="bar {kind}" x="{x:.1f}" y="{base:.1f}" width="{bar - 2:.1f}" '
                    f'height="{height:.1f}" fill="{colour}"><title>{day}: {count} {word}</title></rect>'
                )
        if day == 1 or day % 5 == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{_H - _PAD + 14}" text-anchor="middle" '
                f'font-size="10">{day}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def ratings_chart(m: OfficeMonth) -> Markup:
    """The ratings by score, 1 to 4, as horizontal bars."""
    by_score, width, height = m.ratings.by_score, 300, 110
    top = max([*by_score, 1])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart ratings" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" data-office="{m.code}">',
        f"<title>Penilaian, {escape(m.name)}, {month_text(m.month)}</title>",
    ]
    for i, count in enumerate(by_score):
        y, length = 8 + i * 25, (width - 120) * count / top
        label = rating.LABELS["id"][i + 1]
        parts.append(f'<text x="0" y="{y + 14}" font-size="11">{i + 1} {label}</text>')
        parts.append(
            f'<rect class="bar score{i + 1}" x="95" y="{y}" width="{length:.1f}" height="18" fill="#2f855a"/>'
        )
        parts.append(f'<text x="{100 + length:.1f}" y="{y + 14}" font-size="11">{count}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def month_text(month: str) -> str:
    """ "2026-11" as people write it: "November 2026"."""
    year, number = parse_month(month)
    return format_date(date(year, number, 1), "MMMM y", locale="id")


def shown(m: OfficeMonth) -> dict[str, str]:
    """The figures of `row()` as an Indonesian reader writes them: a decimal comma, at most two
    decimals ("66,67", "3,5"), "" where none (the CSV keeps the dot: row())."""
    row = m.row()
    for key in _DECIMALS:
        if row[key]:
            row[key] = format_decimal(float(row[key]), format="#,##0.##", locale="id")
    return row


_DECIMALS = (
    "answered_within_pct",
    "first_response_median_h",
    "first_response_p90_h",
    "rating_average",
    "skm_index",
)


def report_context(months: list[OfficeMonth], title: str) -> dict[str, Any]:
    """What templates/id/report.*.j2 show: per office its figures and its two charts."""
    sections = []
    for m in months:
        year, number = parse_month(m.month)
        days = (date(year + number // 12, number % 12 + 1, 1) - date(year, number, 1)).days
        sections.append({"m": m, "row": shown(m), "daily": daily_chart(m, days), "ratings": ratings_chart(m)})
    month = month_text(months[0].month) if months else ""
    return {"title": title, "month": month, "sections": sections}


def render(renderer: Renderer, months: list[OfficeMonth], title: str) -> tuple[str, str, str]:
    """(subject, text, html) of the report of these offices."""
    return renderer.render("report", "id", report_context(months, title))


# --- sending it to the managers --------------------------------------------------------------


def queue_report(
    s: Session, renderer: Renderer, settings: Settings, office: Office, month: str, now: datetime
) -> tuple[str, str]:
    """Queue one office's report for its head, once per month (the caller's transaction).
    Returns (result, reason): queued | already_sent | no_head | before_first_mail | refused."""
    head = office.head
    if not head:
        return "no_head", f"offices.{office.code}.head is not set"
    early = before_first_mail(s, office, month)
    if early:
        return "before_first_mail", early
    if monthly_report.report_delivered(s, month, head, office.code):
        return "already_sent", f"{month} report already sent to {head}"
    refused = guard.refusal(s, office.code, head, settings.own_addresses)
    if refused:
        return "refused", refused
    context = report_context([compute(s, office, month)], f"Laporan bulanan PST {office.name}")
    out = renderer.compose(office, "report", "id", context, head, None, now)
    why = f"monthly report {month}"
    outbox_id = enqueue(s, office, None, MessageKind.REPORT, why, out, now, quiet_after=now)
    opening = sla.clock_start(office, now)
    if opening > now:
        outbox.defer_outbox(s, outbox_id, opening)
    monthly_report.add_report_delivery(s, month, head, office.code, outbox_id, now)
    return "queued", ""


def before_first_mail(s: Session, office: Office, month: str) -> str:
    """Why there is no report of `month` for the office: the month ended before the first mail
    the desk holds for it (a desk started in December reports no November); "" otherwise."""
    first = monthly_report.first_received_at(s, office.code)
    if first is not None and first < month_bounds(office, month)[1]:
        return ""
    seen = f"the first on {first.astimezone(office.tz):%Y-%m-%d}" if first else "none yet"
    return f"{month} ended before the office's first mail ({seen})"


def send(
    settings: Settings, engine: Engine, renderer: Renderer, clock: Clock, month: str, offices: list[Office]
) -> list[tuple[str, str, str]]:
    """Queue the month's report for each office's head; [(office, result, reason)]."""
    results = []
    for office in offices:
        with db.transaction(engine) as s:
            result, reason = queue_report(s, renderer, settings, office, month, clock.now())
        results.append((office.code, result, reason))
        logger.info(
            "monthly_report", office=office.code, mailbox=office.imap.username, ticket=None,
            month=month, result=result, reason=reason or None,
        )  # fmt: skip
    return results


def first_working_day(office: Office, day: date) -> bool:
    """Whether `day` is the office's first working day of its month."""
    if not sla.is_working_day(office, day):
        return False
    return not any(sla.is_working_day(office, day.replace(day=d)) for d in range(1, day.day))


def send_due(settings: Settings, engine: Engine, renderer: Renderer, clock: Clock) -> Counter[str]:
    """The periodic check: on an office's first working day of the month, in office hours,
    last month's report goes to its head (once: report_deliveries; none for a month that
    ended before the office's first mail)."""
    now, done = clock.now(), Counter[str]()
    due = []
    for office in settings.offices:
        today = now.astimezone(office.tz).date()
        if office.head and sla.clock_start(office, now) == now and first_working_day(office, today):
            due.append((office, previous_month(today)))
    for office, month in due:
        with db.reading(engine) as s:
            if monthly_report.report_delivered(s, month, office.head, office.code):
                continue
            if before_first_mail(s, office, month):
                continue  # quietly: this check runs all day on the first working day
        for _, result, _ in send(settings, engine, renderer, clock, month, [office]):
            done[f"report_{result}"] += 1
    return done
