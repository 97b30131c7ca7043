"""The pipeline's steps for complaints (see driver.py for the order; the complaint step that
reads a mail as one is in reading.py).

    … identify → report → complaint │ … store → relate → lifecycle → complaint_followup
                                    │   → adopt_answers → acknowledge → notify_head

- complaint_followup: a follow-up that complains, in a conversation that is a request, makes
  the ticket a complaint once (event `complaint`; the complaint promise counted from that
  mail, never later than the deadline it had); the acknowledge and notify_head steps then
  send the complaint acknowledgement and the notice to the head, as for a new complaint.
- notify_head: a complaint (new, or made in a conversation) goes straight to the head of
  office (`offices.X.head`), held until the office's next opening; at most
  `complaints.max_notices_per_sender_per_hour` caused by one author or envelope sender and
  `…_per_office_per_hour` for the office: past them the ticket gets the event
  `complaint_notice_withheld` and the head's next digest one line per sender instead.
"""

from __future__ import annotations

from babel.dates import format_datetime as babel_datetime
from sqlmodel import Session

from mailer import log
from mailer.decide import complaint, floods, rules, sla
from mailer.delivery import guard
from mailer.delivery.queue import enqueue
from mailer.delivery.render import deadline_text
from mailer.pipeline.context import Attempt, Reading, Setup
from mailer.settings import Office
from storage.messages import ticket_history_texts
from storage.outbox import defer_outbox
from storage.tickets import add_ticket_event, complaint_facts, make_complaint, ticket_kind
from storage.vocabulary import MessageKind, TicketKind, TicketState, WithheldEvent

logger = log.get(__name__)


def step_complaint_followup(p: Setup, read: Reading, tx: Attempt, s: Session) -> None:
    """A person's follow-up that complains, in a conversation that is still a request: the
    ticket becomes a complaint (once), with the complaint promise from this mail."""
    ticket, office = tx.ticket, read.office
    if ticket is None or tx.new_ticket or not tx.complaint or tx.rating is not None:
        return
    if tx.change is not None and tx.change.event == "thanked":
        tx.complaint = ""  # "terima kasih atas tanggapan pengaduan saya" thanks, it does not complain
        return
    facts = complaint_facts(s, ticket.id)
    if facts.kind == TicketKind.COMPLAINT:
        tx.complaint = ""  # already one: acknowledged and forwarded when it became one
        return
    if tx.complaint.startswith(complaint.BODY_RULE):  # read again without what earlier mails said
        history = ticket_history_texts(s, ticket.id, before=tx.message_pk)
        tx.complaint = complaint.reason(read.mail, office.complaint_addresses, history)
        if not tx.complaint:
            return
    due = sla.due_at(office, read.received_at, working_days=office.complaint_sla_working_days)
    if not (tx.change is not None and tx.change.fresh_clock):  # never later than it was due
        due = min(due, tx.due or facts.due_at)
    if not make_complaint(s, ticket.id, due):
        tx.complaint = ""
        return
    state = tx.change.state if tx.change is not None else ticket.state
    sender = read.mail.from_.email if read.mail.from_ else ""
    add_ticket_event(
        s, ticket_id=ticket.id, message_pk=tx.message_pk, at=read.received_at, event="complaint",
        state=TicketState(state), actor=sender, detail=tx.complaint,
    )  # fmt: skip
    tx.complaint_in_conversation, tx.due, tx.language = True, due, facts.language


def complaint_recipient(read: Reading, tx: Attempt) -> str:
    """Who is told their complaint was received: the requester of a new ticket, the person
    who wrote it in a conversation (the requester or someone on the ticket)."""
    assert tx.ticket is not None
    if tx.complaint_in_conversation:
        return rules.acknowledgement_recipient(read.mail) or ""
    return tx.ticket.requester_email


def step_notify_head(p: Setup, read: Reading, tx: Attempt, s: Session) -> None:
    """A complaint (a new one, or one made in a conversation), forwarded to the head of office
    (no head configured: nothing)."""
    ticket, office = tx.ticket, read.office
    fresh = tx.new_ticket or tx.complaint_in_conversation
    if not (fresh and tx.complaint and ticket is not None and office.head):
        return
    refused = head_refusal(p, office, s)
    if refused:
        tx.warnings.append(f"complaint not sent to the head of office: {refused}")
        return
    limits = p.settings.complaints
    per_hour = floods.Limits(limits.max_notices_per_sender_per_hour, limits.max_notices_per_office_per_hour)
    kinds = (MessageKind.COMPLAINT_NOTICE,)
    cause_ = cause(read)
    tx.notice_withheld = guard.flood_refusal(s, office.code, read.now, kinds, per_hour, office.head, cause_)
    if tx.notice_withheld:  # counted by the head's next digest: "N pengaduan lain dari …"
        record_withheld(s, read, tx, WithheldEvent.COMPLAINT_NOTICE, tx.notice_withheld)
        return
    assert tx.due is not None
    mail = read.mail
    received = babel_datetime(read.received_at.astimezone(office.tz), "EEEE, d MMMM y HH.mm", locale="id")
    context = {
        "requester": mail.from_.formatted() if mail.from_ else ticket.requester_email,
        "subject": " ".join(mail.subject.split()) or "-",
        "text": read.written or mail.text.strip(),  # what they wrote (the trim step)
        "received_text": f"{received} {office.time_zone_label}",
        "due_text": deadline_text(tx.due, office, "id"),  # day and time, as the acknowledgement says
        "reason": complaint.phrase(tx.complaint),
        "in_conversation": tx.complaint_in_conversation,
    }
    reply_to = ", ".join(a for a in (complaint_recipient(read, tx), office.email) if a)
    out = p.renderer.compose(
        office,
        "complaint_head",
        "id",
        context,
        office.head,
        ticket.ref,
        read.now,
        extra=[("Reply-To", reply_to)],
    )
    why = "a complaint, to the head of office"  # should the sending slip into the night: the morning
    kind = MessageKind.COMPLAINT_NOTICE
    outbox_id = enqueue(s, office, ticket.id, kind, why, out, read.now, quiet_after=read.now, cause=cause_)
    opening = sla.clock_start(office, read.now)
    if opening > read.now:
        defer_outbox(s, outbox_id, opening)


def head_refusal(p: Setup, office: Office, s: Session) -> str:
    """Why a complaint of `office` would not go to its head ("" when it goes): no head is
    configured, or the guard refuses the address. The acknowledgement says the complaint was
    forwarded only when this is "" (the notice is queued in the same transaction)."""
    if not office.head:
        return "no head of office configured"
    return guard.refusal(s, office.code, office.head, p.own_addresses) or ""


def cause(read: Reading) -> tuple[str, str]:
    """(author, envelope sender) of the mail read: its From and Return-Path addresses ("" when
    it has none); what the hourly limits count (guard.flood_refusal)."""
    return (read.mail.from_.email if read.mail.from_ else "", read.mail.return_path or "")


def record_withheld(s: Session, read: Reading, tx: Attempt, event: WithheldEvent, reason: str) -> None:
    """A ticket event saying an hourly limit withheld an automatic mail: by the author (else the
    envelope sender) of the mail read, the limit reached as its detail."""
    assert tx.ticket is not None
    state = tx.change.state if tx.change is not None else tx.ticket.state
    author, envelope_sender = cause(read)
    add_ticket_event(
        s, ticket_id=tx.ticket.id, message_pk=tx.message_pk, at=read.now, event=event,
        state=TicketState(state), actor=author or envelope_sender, detail=reason,
    )  # fmt: skip


def promise_days(s: Session, office: Office, ticket_id: int) -> int:
    """The working days of a ticket's promise: the complaint figure for a complaint."""
    is_complaint = ticket_kind(s, ticket_id) == TicketKind.COMPLAINT
    return office.complaint_sla_working_days if is_complaint else office.sla_working_days


def report(read: Reading, tx: Attempt, created: bool) -> None:
    """Log what these steps did (inside the driver's bound context)."""
    if (created or tx.complaint_in_conversation) and tx.complaint:
        logger.info(
            "complaint_received",
            reason=tx.complaint,
            head=read.office.head or None,
            in_conversation=tx.complaint_in_conversation,
        )
