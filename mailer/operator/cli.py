"""`mailer`: run | once | check-config | tickets | show REF | … | status | dead-letters | outbox.

Exit codes: 0 done, 1 a pass had failures (`status`: something needs attention; a retry that
failed or was refused), 2 wrong settings or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from email import message_from_bytes, policy
from typing import TYPE_CHECKING, Any

from mailer import log
from mailer.errors import ConfigError
from mailer.settings import Office, Settings, load_settings
from storage.vocabulary import (
    Direction,
    MessageKind,
    NoticeLevel,
    OutboxState,
    ShownOutboxState,
    TicketKind,
    TicketState,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from mailer.clock import Clock
    from mailer.delivery.outbox import OutboxSender

if TYPE_CHECKING:
    from datetime import tzinfo

    from storage.tables import AttachmentRow, MessageRow, OutboxRow


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mailer", description="PST mail desk: IMAP in, tickets, acknowledgements."
    )
    parser.add_argument(
        "--settings",
        default=os.environ.get("PST_SETTINGS", "settings.toml"),
        help="settings file (default: $PST_SETTINGS or ./settings.toml)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the daemon until SIGTERM/SIGINT")
    sub.add_parser("once", help="one full pass: fetch every mailbox, send what is due, exit")
    sub.add_parser("check-config", help="validate the settings and exit")
    tickets = sub.add_parser("tickets", help="list tickets, newest first")
    tickets.add_argument("--office", help="office code, e.g. 3514")
    tickets.add_argument("--state", help=" | ".join(TicketState))
    tickets.add_argument("--limit", type=int, default=50)
    show = sub.add_parser("show", help="one ticket with its messages")
    show.add_argument("ref", help="ticket reference, e.g. PST-3514-2026-00042")
    show.add_argument("--raw", action="store_true", help="print each message's full source")
    show.add_argument(
        "--full", action="store_true", help="print each message's full text, quoted history included"
    )
    search = sub.add_parser("search", help="find closed tickets by their text, best first")
    search.add_argument("words", nargs="+", help="words the ticket's subject or text must contain")
    search.add_argument("--office", help="office code, e.g. 3514")
    search.add_argument("--limit", type=int, default=20)
    sla_cmd = sub.add_parser("sla", help="explain a ticket's deadline step by step")
    sla_cmd.add_argument("ref", help="ticket reference, e.g. PST-3514-2026-00042")
    digest = sub.add_parser("digest", help="render a manager's digest without sending it")
    digest.add_argument(
        "--manager",
        required=True,
        help="the manager's address (offices.X.head, provinces.X.head, national.head)",
    )
    digest.add_argument(
        "--at", help="as of this time, ISO 8601; without an offset, the manager's local time (default: now)"
    )
    digest.add_argument(
        "--preview", action="store_true", help="render without sending (the only mode: the daemon sends)"
    )
    digest.add_argument(
        "--html", metavar="FILE", help="write the HTML part to FILE instead of the text to the terminal"
    )
    report = sub.add_parser("report", help="the monthly report per office (CSV, HTML, mail to the heads)")
    report.add_argument("--month", required=True, help="the month reported on, YYYY-MM (office time)")
    scope = report.add_mutually_exclusive_group()
    scope.add_argument("--office", help="one office, e.g. 3514")
    scope.add_argument("--province", help="every office of a province, e.g. 3500")
    report.add_argument("--csv", help="write the figures as CSV to this file")
    report.add_argument("--html", help="write the HTML page (tables, charts) to this file")
    report.add_argument(
        "--send", action="store_true", help="mail each office's report to its head (once a month)"
    )
    _operator_commands(sub)
    return parser


def _operator_commands(sub: Any) -> None:
    """`status`, `dead-letters [show|retry|dismiss]`, `outbox [retry]`: the operator's view (status.py)
    and actions (repair.py)."""
    status = sub.add_parser(
        "status", help="each office at a glance; exit 1 when something needs attention (monitoring)"
    )
    status.add_argument("--office", help="office code, e.g. 3514")
    status.add_argument("--json", action="store_true", help="the same as JSON, for machines")
    dead = sub.add_parser("dead-letters", help="mail that broke a step, kept whole: list, show, retry")
    dead.add_argument("--office", help="office code, e.g. 3514")
    dead.add_argument("--all", action="store_true", help="resolved ones too")
    dead_sub = dead.add_subparsers(dest="action")
    show = dead_sub.add_parser("show", help="one dead letter: where, when, the whole reason, its headers")
    show.add_argument("id", type=int)
    show.add_argument("--raw", action="store_true", help="the mail's exact bytes to stdout (save as .eml)")
    retry = dead_sub.add_parser("retry", help="run kept mail through the pipeline again (after a fix)")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("id", type=int, nargs="?")
    which.add_argument("--all", action="store_true", dest="every", help="every one not yet resolved")
    dismiss = dead_sub.add_parser("dismiss", help="resolve one without processing it (kept whole)")
    dismiss.add_argument("id", type=int)
    dismiss.add_argument("--reason", required=True, help="why, for the record (e.g. 'spam, not a request')")
    outbox = sub.add_parser("outbox", help="deliveries, newest first; retry a failed one")
    outbox.add_argument("--office", help="office code, e.g. 3514")
    outbox.add_argument("--state", choices=[str(state) for state in ShownOutboxState])
    outbox.add_argument("--limit", type=int, default=50)
    outbox_sub = outbox.add_subparsers(dest="action")
    again = outbox_sub.add_parser("retry", help="put a failed delivery back in the queue (logged)")
    again.add_argument("id", type=int)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.settings)
    except ConfigError as exc:
        print(f"mailer: configuration error: {exc}", file=sys.stderr)
        return 2
    log.configure(settings.log_format, settings.log_level)
    if args.command == "check-config":
        return _check_config(settings)
    if args.command in ("run", "once"):
        return asyncio.run(_run(settings, forever=args.command == "run"))
    if args.command == "tickets":
        return _tickets(settings, args.office, args.state, args.limit)
    if args.command == "sla":
        return _sla(settings, args.ref)
    if args.command == "search":
        return _search(settings, " ".join(args.words), args.office, args.limit)
    if args.command == "report":
        return _report(settings, args)
    if args.command == "digest":
        return _digest(settings, args.manager, args.at, args.preview, args.html)
    if args.command in ("status", "dead-letters", "outbox"):
        return _operator(settings, args)
    return _show(settings, args.ref, args.raw, args.full)


def _operator(settings: Settings, args: argparse.Namespace) -> int:
    """`status`, `dead-letters …`, `outbox …` (the logic in status.py and repair.py)."""
    import json

    from mailer.clock import SystemClock
    from mailer.operator import repair, status
    from storage import db, repo

    office = getattr(args, "office", None)
    if office and office not in {o.code for o in settings.offices}:
        print(f"mailer: no office {office} in {settings.file}", file=sys.stderr)
        return 2
    clock = SystemClock()
    engine = db.make_engine(settings.database_url)
    db.migrate(engine)
    now, action, lines = clock.now(), getattr(args, "action", None), []
    code = 0
    if args.command == "status":
        with db.reading(engine) as s:
            found = status.collect(s, settings, now, office)
        code = 1 if any(st.attention(settings) for st in found) else 0
        if args.json:
            lines = [json.dumps(status.as_json(found, settings, now), indent=2)]
        else:
            lines = status.text(found, settings, now)
    elif args.command == "dead-letters" and action == "show":
        with db.reading(engine) as s:
            dead = repo.dead_letter(s, args.id)
        if dead is None:
            print(f"mailer: no dead letter {args.id}", file=sys.stderr)
            return 1
        if args.raw:
            sys.stdout.buffer.write(dead.raw)
            sys.stdout.flush()
            return 0
        lines = status.dead_letter_detail(dead, now)
    elif args.command == "dead-letters" and action == "retry":
        if args.every:
            done = repair.retry_dead_letters(settings, engine, clock, office)
        else:
            done = [repair.retry_dead_letter(settings, engine, clock, args.id)]
        lines = [r.line() for r in done] or ["(no dead letter to retry)"]
        code = 0 if all(r.result == "resolved" for r in done) else 1
    elif args.command == "dead-letters" and action == "dismiss":
        ok, said = repair.dismiss_dead_letter(engine, clock, args.id, args.reason)
        lines, code = [said], 0 if ok else 1
    elif args.command == "dead-letters":
        with db.reading(engine) as s:
            lines = status.dead_letter_lines(repo.dead_letters(s, office, resolved=args.all), now)
    elif action == "retry":
        ok, said = repair.retry_delivery(engine, clock, args.id)
        lines, code = [said], 0 if ok else 1
    else:
        with db.reading(engine) as s:
            lines = status.delivery_lines(repo.deliveries(s, office, args.state, args.limit), now)
    engine.dispose()
    print("\n".join(lines))
    return code


def _search(settings: Settings, words: str, office: str | None, limit: int) -> int:
    """Past consultations (closed tickets) matching every word, best first, with an excerpt."""
    from storage import db, repo

    engine = db.make_engine(settings.database_url)
    db.migrate(engine)
    with db.reading(engine) as s:
        hits = repo.search_tickets(s, words, office=office, limit=limit)
    for hit in hits:
        closed = f"{hit.closed_at:%Y-%m-%d}" if hit.closed_at else "?"
        print(f"{hit.ref:<22} closed {closed}  {hit.subject[:70]}")
        print(f"    {hit.snippet[:160]}")
    print(f"({len(hits)} closed ticket{'s' if len(hits) != 1 else ''} found for: {words})")
    return 0 if hits else 1


def _sla(settings: Settings, ref: str) -> int:
    """The deadline of a ticket, as the calendar computes it: received, when the clock started,
    the working days counted, the days skipped and why, the paused spans, the due time."""
    from mailer.clock import SystemClock
    from mailer.decide import lifecycle, sla
    from storage import db, repo

    engine = db.make_engine(settings.database_url)
    db.migrate(engine)
    with db.reading(engine) as s:
        ticket = repo.ticket_by_ref(s, ref)
        clock = repo.ticket_clock(s, ticket.id) if ticket is not None else None
        ticket_kind = repo.ticket_kind(s, ticket.id) if ticket is not None else TicketKind.REQUEST
    if ticket is None or clock is None:
        print(f"mailer: no ticket {ref}", file=sys.stderr)
        return 1
    office = settings.office(ref.split("-")[1])
    now = SystemClock().now()
    start, paused = lifecycle.clock_basis(*clock, now)
    days = (
        office.complaint_sla_working_days if ticket_kind == TicketKind.COMPLAINT else office.sla_working_days
    )
    found = sla.deadline(office, start, working_days=days, paused=paused)
    print(f"{ref}  [{ticket.state}]  {office.name}, {days} hari kerja, {office.time_zone}")
    if start != clock[0]:
        since = f"{start.astimezone(office.tz):%Y-%m-%d %H:%M %Z}"
        print(
            f"(putaran ke-{lifecycle.clock_round(clock[1])}: waktu dihitung ulang sejak {since}, pemohon "
            "menulis lagi setelah dijawab atau tiket dibuka kembali; pengingat dan eskalasi berlaku "
            "lagi untuk tenggat ini)"
        )
    for line in found.explain():
        print(line)
    if ticket.state == TicketState.WAITING:
        print("(sedang menunggu pemohon: tenggat bergeser selama penundaan)")
    elif ticket.state != TicketState.OPEN:
        print(f"(status {ticket.state}: waktu layanan tidak berjalan)")
    return 0


def _report(settings: Settings, args: argparse.Namespace) -> int:
    """The monthly report: a table on stdout, and CSV / HTML files, and mail to the heads."""
    from pathlib import Path

    from mailer.clock import SystemClock
    from mailer.delivery.outbox import OutboxSender
    from mailer.delivery.render import Renderer
    from mailer.timed import monthly
    from storage import db

    try:
        monthly.parse_month(args.month)
        offices = monthly.select_offices(settings, args.office, args.province)
    except ValueError as exc:
        print(f"mailer: {exc}", file=sys.stderr)
        return 2
    except KeyError as exc:
        print(f"mailer: no office or province {exc} in the settings", file=sys.stderr)
        return 2
    engine = db.make_engine(settings.database_url)
    db.migrate(engine)
    with db.reading(engine) as s:
        months = [monthly.compute(s, o, args.month) for o in offices]
    columns = [c for c in monthly.CSV_COLUMNS if c not in ("name", "month")]
    print(f"{args.month}  " + " ".join(c for c in columns))
    for m in months:
        row = m.row()
        print(f"{args.month}  " + " ".join(f"{row[c] or '-':>{len(c)}}" for c in columns))
    renderer = Renderer()
    if args.csv:
        monthly.write_csv(Path(args.csv), months)
        print(f"CSV: {args.csv}")
    if args.html:
        title = "Laporan bulanan PST" if len(months) != 1 else f"Laporan bulanan PST {months[0].name}"
        Path(args.html).write_text(monthly.render(renderer, months, title)[2], encoding="utf-8")
        print(f"HTML: {args.html}")
    if args.send:
        clock = SystemClock()
        for code, result, reason in monthly.send(settings, engine, renderer, clock, args.month, offices):
            print(f"{code}: {result}{': ' + reason if reason else ''}")
        if settings.outbox.enabled:
            asyncio.run(_send_queued(settings, engine, clock, offices, OutboxSender))
    engine.dispose()
    return 0


async def _send_queued(
    settings: Settings, engine: Engine, clock: Clock, offices: Sequence[Office], sender: type[OutboxSender]
) -> None:
    """Deliver what is due now (a report queued outside office hours waits for the daemon)."""
    for office in offices:
        s = sender(office, settings.outbox, engine, clock, settings.acknowledgement.quiet_hours)
        await s.resume()
        await s.send_due()
        await s.close()


def _check_config(settings: Settings) -> int:
    print(f"{settings.file}: OK")
    print(f"  database: {settings.database_url.split('@')[-1]}")
    for o in settings.offices:
        print(
            f"  {o.code} {o.name} <{o.email}> {o.time_zone_label}, {o.sla_working_days} working days; "
            f"IMAP {o.imap.tls}://{o.imap.host}:{o.imap.port}/{o.imap.folder}, "
            f"SMTP {o.smtp.tls}://{o.smtp.host}:{o.smtp.port}"
        )
    return 0


async def _run(settings: Settings, forever: bool) -> int:
    from mailer.daemon import Daemon

    daemon = Daemon(settings)
    if not forever:
        report = await daemon.run_once()
        daemon.close()
        for code, counts in report.fetched.items():
            sent = report.sent.get(code, Counter())
            fetched = ", ".join(f"{k} {v}" for k, v in counts.items()) or "nothing new"
            sending = ", ".join(f"{k} {v}" for k, v in sent.items()) or "nothing to send"
            print(f"{code}: fetched: {fetched}; sending: {sending}")
        if report.swept is not None:
            print(f"sweep: {report.swept.summary()}")
        for code, error in report.errors.items():
            print(f"{code}: FAILED {error}", file=sys.stderr)
        return 1 if report.errors else 0
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await daemon.run_forever(stop)
    return 0


def _tickets(settings: Settings, office: str | None, state: str | None, limit: int) -> int:
    from storage import db, repo

    engine = db.make_engine(settings.database_url)
    db.migrate(engine)
    with db.reading(engine) as s:
        rows = repo.list_tickets(s, office=office, state=state, limit=limit)
        flags = repo.address_flags(s, office)
    now = datetime.now(UTC)
    offices = {o.code: o for o in settings.offices}
    header = f"{'REFERENCE':<22} {'STATE':<9} {'RECEIVED':<20} {'DUE':<20} {'MSGS':>4}"
    print(f"{header}  REQUESTER / SUBJECT   (office local time)")
    for t in rows:
        flag = flags.get((t.office_code, t.requester_email))
        marker = f" [{flag.flag.upper()}]" if flag else ""
        home = offices.get(t.office_code)
        late = "!" if t.state == TicketState.OPEN and t.due_at < now else " "
        print(
            f"{t.ref:<22} {t.state:<9} {_local(t.received_at, home)} {_local(t.due_at, home)}{late}"
            f"{t.message_count:>4}  {t.requester_email}{marker} / {t.subject[:60]}"
        )
    if any(t.state == TicketState.OPEN and t.due_at < now for t in rows):
        print("!: open past its deadline (it escalates; `mailer sla REF` explains the deadline)")
    if any(flags.get((t.office_code, t.requester_email)) for t in rows):
        print("[BOUNCING]: our mail to that address failed for good; [COMPLAINED]: it reported our mail")
    print(f"({len(rows)} ticket{'s' if len(rows) != 1 else ''})")
    return 0


def _local(at: datetime, office: Office | None) -> str:
    """ "2026-12-05 08:25 WIB" in the office's zone (UTC for an office no longer in the settings)."""
    if office is None:
        return f"{at:%Y-%m-%d %H:%M} UTC"
    return f"{at.astimezone(office.tz):%Y-%m-%d %H:%M} {office.time_zone_label:<4}"[:20]


def _show(settings: Settings, ref: str, raw: bool, full: bool = False) -> int:
    from mailer.clock import SystemClock
    from mailer.decide import lifecycle
    from storage import db, repo

    engine = db.make_engine(settings.database_url)
    db.migrate(engine)
    with db.reading(engine) as s:
        found = repo.ticket_with_messages(s, ref)
        history = repo.ticket_events(s, found[0].id) if found and found[0].id is not None else []
        flags = repo.address_flags(s, found[0].office_code) if found else {}
        assert found is None or found[0].id is not None
        links = repo.ticket_links(s, found[0].id) if found and found[0].id else []
        people = repo.ticket_participants(s, found[0].id) if found and found[0].id else {}
        files = repo.attachments_of(s, [m.id for m, _ in found[1] if m.id is not None]) if found else {}
        rated = repo.rating_of(s, found[0].id) if found and found[0].id else None
        notices = repo.notices_of(s, found[0].id) if found and found[0].id else []
    if found is None:
        print(f"mailer: no ticket {ref}", file=sys.stderr)
        return 1
    t, messages = found
    office = settings.office(t.office_code) if t.office_code in {o.code for o in settings.offices} else None
    tz = office.tz if office else None
    now = SystemClock().now()
    print(f"{t.ref}  [{t.state}]  {t.kind}, language {t.language}")
    print(f"  office    : {t.office_code} {office.name if office else ''}")
    print(f"  requester : {t.requester_name} <{t.requester_email}>")
    print(f"  subject   : {t.subject}")
    print(f"  received  : {t.received_at.astimezone(tz):%Y-%m-%d %H:%M %Z}")
    again = ""
    if t.clock_round > 1:
        again = f"  (clock round {t.clock_round}: restarted by a reply or a reopening)"
    print(f"  due       : {t.due_at.astimezone(tz):%Y-%m-%d %H:%M %Z}{again}")
    print(f"  people    : {', '.join(f'{email} ({role})' for email, role in sorted(people.items()))}")
    for direction, other, reason in links:
        arrow = "opened from" if direction == "from" else "followed by"
        print(f"  link      : {arrow} {other} ({reason.replace('_', ' ')})")
    if t.first_response_at is not None:
        print(
            f"  answered  : {t.first_response_at.astimezone(tz):%Y-%m-%d %H:%M %Z} by {t.first_response_by}"
        )
    if t.resolution:
        print(
            f"  settled   : {t.resolution}" + (f" (last officer {t.last_officer})" if t.last_officer else "")
        )
    if rated is not None:
        times = f", {rated.count} ratings received, the latest kept" if rated.count > 1 else ""
        when = f"{rated.rated_at.astimezone(tz):%Y-%m-%d %H:%M}"
        print(f"  rating    : {rated.score}/4 by {rated.how} from {rated.rater}, {when}{times}")
    clock_round = 1
    for e in history:
        detail = f"  {e.detail}" if e.detail else ""
        if e.event in lifecycle.FRESH_CLOCK_EVENTS:
            clock_round += 1
            detail += f"  [clock round {clock_round}: a fresh deadline, notices start again]"
        print(f"  {e.at.astimezone(tz):%Y-%m-%d %H:%M}  {e.event:<9} -> {e.state:<8} {e.actor}{detail}")
    for n in notices:
        print(
            f"  notice    : round {n.clock_round} {NoticeLevel(n.level).label:<13} "
            f"{n.created_at.astimezone(tz):%Y-%m-%d %H:%M} to {n.recipient} "
            f"(deadline {n.due_at.astimezone(tz):%Y-%m-%d %H:%M})"
        )
    for (_office, address), flag in flags.items():
        if address == t.requester_email or flag.ticket_id == t.id:
            print(
                f"  !! {address} is {flag.flag.upper()} since {flag.since.astimezone(tz):%Y-%m-%d %H:%M}: "
                f"{flag.reason}; no automatic mail goes to it"
            )
    for m, outbox in messages:
        inside = m.kind in (MessageKind.STAFF_COMMAND, MessageKind.STAFF_NOTE)
        arrow = "->" if m.direction == Direction.OUT else "<=" if inside else "<-"
        delivery = _delivery_text(outbox, tz, now) if outbox else ""
        stamp = f"{m.stored_at.astimezone(tz):%Y-%m-%d %H:%M}"
        print(f"\n{arrow} {m.kind} #{m.id} {stamp}  {m.from_email} -> {m.to_emails}{delivery}")
        print(f"   Subject: {m.subject}")
        print(f"   Message-ID: <{m.message_id}>")
        for line in _attachment_lines(files.get(m.id or 0, [])):
            print(f"   {line}")
        if raw:
            print(message_from_bytes(m.raw, policy=policy.compat32).as_string())
        else:
            print("   " + "\n   ".join(_message_text(m, full).splitlines()[:40]))
    return 0


def _delivery_text(outbox: OutboxRow, tz: tzinfo | None, now: datetime) -> str:
    """ "  [sent]", "  [pending, due 2026-11-24 06:00]" (held: the quiet hours, office hours),
    "  [failed, 550 …]"."""
    notes = [outbox.state]
    if outbox.state == OutboxState.PENDING and outbox.next_attempt_at > now:
        notes.append(f"due {outbox.next_attempt_at.astimezone(tz):%Y-%m-%d %H:%M}")
    if outbox.last_error:
        notes.append(outbox.last_error)
    return f"  [{', '.join(notes)}]"


def _attachment_lines(files: list[AttachmentRow]) -> list[str]:
    """ "Attachments (2):" and one line per file: name, type, size, hash, and what is missing."""
    if not files:
        return []
    lines = [f"Attachments ({len(files)}):"]
    for a in files:
        notes = [f"from {a.origin}"] if a.origin else []
        if a.omitted:
            notes.append(f"bytes not stored: {a.omitted}; the raw mail has them")
        extra = f"  [{'; '.join(notes)}]" if notes else ""
        lines.append(f"  {a.filename}  {a.content_type}, {a.size:,} bytes, sha256 {a.sha256[:16]}…{extra}")
    return lines


def _message_text(m: MessageRow, full: bool) -> str:
    """What a person wrote (the trimmed text), or with `full` the whole decoded text; our own
    outgoing mail is shown whole."""
    body = m.body_text.strip()
    if full or m.direction == Direction.OUT or m.body_trimmed.strip() == body:
        return body
    if not m.body_trimmed.strip():
        return "(nothing of their own above the quoted text; --full shows it all)"
    return m.body_trimmed.strip() + "\n[quoted history and signature trimmed; --full shows them]"


def _digest(settings: Settings, address: str, at: str | None, preview: bool, html_file: str | None) -> int:
    """`mailer digest --manager ADDRESS --at DATETIME --preview [--html FILE]`."""
    from datetime import datetime

    from mailer.clock import SystemClock
    from mailer.delivery.render import Renderer
    from mailer.timed import digest, notify
    from mailer.timed.sweep import Sweeper
    from storage import db

    if not preview:
        print("mailer: digest renders only with --preview (the daemon sends the digests)", file=sys.stderr)
        return 2
    manager = digest.manager_by_address(settings, address)
    if manager is None:
        known = ", ".join(m.person.address for m in digest.managers(settings)) or "none"
        print(f"mailer: {address} is no manager in {settings.file} (managers: {known})", file=sys.stderr)
        return 2
    tz = manager.person.calendar.tz
    try:
        now = datetime.fromisoformat(at) if at else SystemClock().now()
    except ValueError:
        print(f"mailer: --at {at!r} is not an ISO 8601 date and time", file=sys.stderr)
        return 2
    now = now.replace(tzinfo=tz) if now.tzinfo is None else now
    engine = db.make_engine(settings.database_url)
    db.migrate(engine)
    renderer = Renderer()
    with db.reading(engine) as s:
        found = Sweeper(settings, engine, renderer, SystemClock()).compose(
            s, manager, now.astimezone(tz).date(), now
        )
    subject, text, html = notify.digest_parts(renderer, found, now)
    if found.total == 0 and not settings.digest.send_empty:
        print(
            "(nothing to report: the daemon would send no digest; digest.send_empty = false)", file=sys.stderr
        )
    if html_file:
        with open(html_file, "w", encoding="utf-8") as f:
            f.write(html)
        print(f"{subject}\n-> {html_file}")
        return 0
    print(f"To: {manager.person.address}\nSubject: {subject}\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
