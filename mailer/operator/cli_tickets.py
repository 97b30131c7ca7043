"""`mailer tickets`, `mailer show REF`, `mailer search WORDS`, `mailer sla REF`: what the desk
holds, read from the database and printed for a person (office local time)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from email import message_from_bytes, policy
from typing import TYPE_CHECKING

from mailer.operator.terminal import out
from mailer.settings import AfterWait, Office, Settings
from storage.vocabulary import Direction, MessageKind, NoticeLevel, OutboxState, TicketKind, TicketState

if TYPE_CHECKING:
    from datetime import tzinfo

    from storage.tables import AttachmentRow, MessageRow, OutboxRow


def list_tickets(settings: Settings, office: str | None, state: str | None, limit: int) -> int:
    """`mailer tickets`: newest first, with the deadline, a flag on bouncing or complaining
    requesters and the count of messages; 0."""
    from storage import db
    from storage.flags import address_flags
    from storage.tickets import list_tickets

    engine = db.make_engine(settings.database_url)
    db.migrate(engine)
    with db.reading(engine) as s:
        wanted = TicketState(state) if state in set(TicketState) else None  # no such state: no tickets
        rows = [] if state and wanted is None else list_tickets(s, office=office, state=wanted, limit=limit)
        flags = address_flags(s, office)
    now = datetime.now(UTC)
    offices = {o.code: o for o in settings.offices}
    header = f"{'REFERENCE':<22} {'STATE':<9} {'RECEIVED':<20} {'DUE':<20} {'MSGS':>4}"
    out(f"{header}  REQUESTER / SUBJECT   (office local time)")
    for t in rows:
        flag = flags.get((t.office_code, t.requester_email))
        marker = f" [{flag.flag.upper()}]" if flag else ""
        home = offices.get(t.office_code)
        late = "!" if t.state == TicketState.OPEN and t.due_at < now else " "
        out(
            f"{t.ref:<22} {t.state:<9} {_local(t.received_at, home)} {_local(t.due_at, home)}{late}"
            f"{t.message_count:>4}  {t.requester_email}{marker} / {t.subject[:60]}"
        )
    if any(t.state == TicketState.OPEN and t.due_at < now for t in rows):
        out("!: open past its deadline (it escalates; `mailer sla REF` explains the deadline)")
    if any(flags.get((t.office_code, t.requester_email)) for t in rows):
        out("[BOUNCING]: our mail to that address failed for good; [COMPLAINED]: it reported our mail")
    out(f"({len(rows)} ticket{'s' if len(rows) != 1 else ''})")
    return 0


def _local(at: datetime, office: Office | None) -> str:
    """ "2026-12-05 08:25 WIB" in the office's zone (UTC for an office no longer in the settings)."""
    if office is None:
        return f"{at:%Y-%m-%d %H:%M} UTC"
    return f"{at.astimezone(office.tz):%Y-%m-%d %H:%M} {office.time_zone_label:<4}"[:20]


def show_ticket(settings: Settings, ref: str, raw: bool, full: bool = False) -> int:
    """`mailer show REF`: the ticket, its people, links, events, notices and every message
    (`raw`: its source; `full`: its whole text); 1 when there is no such ticket."""
    from mailer.clock import SystemClock
    from mailer.decide import lifecycle
    from storage import db
    from storage.conversations import ticket_links, ticket_participants
    from storage.flags import address_flags
    from storage.messages import attachments_of, ticket_with_messages
    from storage.ratings import rating_of
    from storage.sweeps import notices_of
    from storage.tickets import ticket_events

    engine = db.make_engine(settings.database_url)
    db.migrate(engine)
    with db.reading(engine) as s:
        found = ticket_with_messages(s, ref)
        history = ticket_events(s, found[0].id) if found and found[0].id is not None else []
        flags = address_flags(s, found[0].office_code) if found else {}
        assert found is None or found[0].id is not None
        links = ticket_links(s, found[0].id) if found and found[0].id else []
        people = ticket_participants(s, found[0].id) if found and found[0].id else {}
        files = attachments_of(s, [m.id for m, _ in found[1] if m.id is not None]) if found else {}
        rated = rating_of(s, found[0].id) if found and found[0].id else None
        notices = notices_of(s, found[0].id) if found and found[0].id else []
    if found is None:
        out(f"mailer: no ticket {ref}", file=sys.stderr)
        return 1
    t, messages = found
    office = settings.office(t.office_code) if t.office_code in {o.code for o in settings.offices} else None
    tz = office.tz if office else None
    now = SystemClock().now()
    out(f"{t.ref}  [{t.state}]  {t.kind}, language {t.language}")
    out(f"  office    : {t.office_code} {office.name if office else ''}")
    out(f"  requester : {t.requester_name} <{t.requester_email}>")
    out(f"  subject   : {t.subject}")
    out(f"  received  : {t.received_at.astimezone(tz):%Y-%m-%d %H:%M %Z}")
    again = ""
    if t.clock_round > 1:
        again = f"  (clock round {t.clock_round}: restarted by a reply, a reopening or a clarification)"
    out(f"  due       : {t.due_at.astimezone(tz):%Y-%m-%d %H:%M %Z}{again}")
    out(f"  people    : {', '.join(f'{email} ({role})' for email, role in sorted(people.items()))}")
    for direction, other, reason in links:
        arrow = "opened from" if direction == "from" else "followed by"
        out(f"  link      : {arrow} {other} ({reason.replace('_', ' ')})")
    if t.first_response_at is not None:
        out(f"  answered  : {t.first_response_at.astimezone(tz):%Y-%m-%d %H:%M %Z} by {t.first_response_by}")
    if t.resolution:
        out(f"  settled   : {t.resolution}" + (f" (last officer {t.last_officer})" if t.last_officer else ""))
    if rated is not None:
        times = f", {rated.count} ratings received, the latest kept" if rated.count > 1 else ""
        when = f"{rated.rated_at.astimezone(tz):%Y-%m-%d %H:%M}"
        out(f"  rating    : {rated.score}/4 by {rated.how} from {rated.rater}, {when}{times}")
    clock_round = 1
    for e in history:
        detail = f"  {e.detail}" if e.detail else ""
        if e.event in lifecycle.FRESH_CLOCK_EVENTS:
            clock_round += 1
            detail += f"  [clock round {clock_round}: a fresh deadline, notices start again]"
        out(f"  {e.at.astimezone(tz):%Y-%m-%d %H:%M}  {e.event:<9} -> {e.state:<8} {e.actor}{detail}")
    for n in notices:
        out(
            f"  notice    : round {n.clock_round} {NoticeLevel(n.level).label:<13} "
            f"{n.created_at.astimezone(tz):%Y-%m-%d %H:%M} to {n.recipient} "
            f"(deadline {n.due_at.astimezone(tz):%Y-%m-%d %H:%M})"
        )
    for (_office, address), flag in flags.items():
        if address == t.requester_email or flag.ticket_id == t.id:
            out(
                f"  !! {address} is {flag.flag.upper()} since {flag.since.astimezone(tz):%Y-%m-%d %H:%M}: "
                f"{flag.reason}; no automatic mail goes to it"
            )
    for m, outbox in messages:
        arrow = "->" if m.direction == Direction.OUT else "<=" if m.kind.startswith("staff") else "<-"
        delivery = delivery_text(outbox, tz, now) if outbox else ""
        stamp = f"{m.stored_at.astimezone(tz):%Y-%m-%d %H:%M}"
        out(f"\n{arrow} {m.kind} #{m.id} {stamp}  {m.from_email} -> {m.to_emails}{delivery}")
        out(f"   Subject: {m.subject}")
        out(f"   Message-ID: <{m.message_id}>")
        for line in _attachment_lines(files.get(m.id or 0, [])):
            out(f"   {line}")
        if raw:
            out(message_from_bytes(m.raw, policy=policy.compat32).as_string())
        else:
            out("   " + "\n   ".join(_message_text(m, full).splitlines()[:40]))
    return 0


def delivery_text(outbox: OutboxRow, tz: tzinfo | None, now: datetime) -> str:
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
    """What a person wrote (the trimmed text: an officer's answer without the request it
    quotes), or with `full` the whole decoded text; the desk's own mail is shown whole."""
    body = m.body_text.strip()
    ours = m.direction == Direction.OUT and m.kind != MessageKind.STAFF_ANSWER
    if full or ours or m.body_trimmed.strip() == body:
        return body
    if not m.body_trimmed.strip():
        return "(nothing of their own above the quoted text; --full shows it all)"
    return m.body_trimmed.strip() + "\n[quoted history and signature trimmed; --full shows them]"


def search(settings: Settings, words: str, office: str | None, limit: int) -> int:
    """Past consultations (closed tickets) matching every word, best first, with an excerpt."""
    from storage import db
    from storage.search import search_tickets

    engine = db.make_engine(settings.database_url)
    db.migrate(engine)
    with db.reading(engine) as s:
        hits = search_tickets(s, words, office=office, limit=limit)
    for hit in hits:
        closed = f"{hit.closed_at:%Y-%m-%d}" if hit.closed_at else "?"
        out(f"{hit.ref:<22} closed {closed}  {hit.subject[:70]}")
        out(f"    {hit.snippet[:160]}")
    out(f"({len(hits)} closed ticket{'s' if len(hits) != 1 else ''} found for: {words})")
    return 0 if hits else 1


_STATE_WORDS = {
    TicketState.OPEN: "terbuka",
    TicketState.WAITING: "menunggu pemohon",
    TicketState.ANSWERED: "dijawab",
    TicketState.CLOSED: "ditutup",
}


def explain_sla(settings: Settings, ref: str) -> int:
    """The deadline of a ticket, as the calendar computes it: received, when the clock started,
    the working days counted, the days skipped and why, the paused spans, the due time."""
    from mailer.clock import SystemClock
    from mailer.decide import lifecycle, sla
    from storage import db
    from storage.tickets import ticket_by_ref, ticket_clock, ticket_kind

    engine = db.make_engine(settings.database_url)
    db.migrate(engine)
    with db.reading(engine) as s:
        ticket = ticket_by_ref(s, ref)
        clock = ticket_clock(s, ticket.id) if ticket is not None else None
        kind = ticket_kind(s, ticket.id) if ticket is not None else "request"
    if ticket is None or clock is None:
        out(f"mailer: no ticket {ref}", file=sys.stderr)
        return 1
    office = settings.office(ref.split("-")[1])
    now = SystemClock().now()
    start, paused = lifecycle.clock_basis(*clock, now)
    days = office.complaint_sla_working_days if kind == TicketKind.COMPLAINT else office.sla_working_days
    found = sla.deadline(office, start, working_days=days, paused=paused)
    state = _STATE_WORDS.get(TicketState(ticket.state), ticket.state)
    out(f"{ref}  [{state}]  {office.name}, {days} hari kerja, {office.time_zone_label}")
    if start != clock[0]:
        since = sla.moment_text(start.astimezone(office.tz))
        out(
            f"(putaran ke-{lifecycle.clock_round(clock[1])}: waktu dihitung ulang sejak {since}, pemohon "
            "menulis lagi setelah dijawab atau memperjelas permintaan yang ditunggu, atau tiket dibuka "
            "kembali; pengingat dan eskalasi berlaku "
            "lagi untuk tenggat ini)"
        )
    for line in found.explain():
        out(line)
    if ticket.state == TicketState.WAITING and office.promise.after_wait is AfterWait.RESTART:
        out("(sedang menunggu pemohon: saat pemohon menjawab, tenggat dihitung ulang penuh dari jawabannya)")
    elif ticket.state == TicketState.WAITING:
        out("(sedang menunggu pemohon: tenggat bergeser selama penundaan)")
    elif ticket.state != TicketState.OPEN:
        out(f"(status {state}: waktu layanan tidak berjalan)")
    return 0
