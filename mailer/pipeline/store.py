"""The steps inside the transaction that write the mail and move its ticket.

    … rating → store → early_answer → relate → lifecycle → … → cursor

- store: the mail as a message row (its attachments too), on its ticket, or on a new ticket
  opened for a person's request (closed at once when the receiving server said spam).
- relate: the ticket's people (From/To/Cc, officers as staff) and, for a new ticket opened
  from another, the link to it.
- lifecycle: the ticket's next state (decide/lifecycle.py): an officer's answer, command or
  note, the requester writing again or reopening; a fresh or resumed SLA deadline (a
  clarification after #tunggu: resumed, or fresh where the office's `sla.after_wait` restarts).
- cursor (run by the driver after the batch): the mailbox cursor, committed with the mail.
"""

from __future__ import annotations

from sqlmodel import Session

from mailer.decide import lifecycle, rules, sla, staff
from mailer.decide.threader import normalise_subject, people_on
from mailer.intake.attachments import attachment_rows
from mailer.model import ticket_ref
from mailer.pipeline import complaints
from mailer.pipeline.context import Attempt, Reading, Setup
from storage import cursors
from storage.conversations import add_participants, link_tickets
from storage.messages import add_attachments, add_message
from storage.sent_mail import our_mail_among
from storage.tickets import (
    TicketRef,
    add_ticket,
    add_ticket_event,
    change_ticket,
    next_ticket_seq,
    note_ticket_message,
    ticket_clock,
    ticket_resolution,
)
from storage.vocabulary import Direction, MessageKind, Resolution, TicketKind, TicketState

SPAM_FILTER = "spam filter"  # the actor of a ticket opened closed as spam, in its history
# Our own mail to staff and managers: a reply to one is talk inside the office, never the answer.
NOTICE_KINDS = (MessageKind.NOTICE, MessageKind.DIGEST, MessageKind.COMMAND_REFUSED, MessageKind.COMMAND_DONE)


def step_store(p: Setup, read: Reading, tx: Attempt, s: Session) -> None:
    mail, decision, office = read.mail, read.decision, read.office
    assert decision is not None
    unverified = read.unverified_command is not None  # kept on no ticket (refusal.py)
    if tx.ticket is None and decision.kind is MessageKind.REQUEST and tx.officer is None and not unverified:
        tx.ticket, tx.new_ticket = _open_ticket(s, read, tx), True
    kind, direction = MessageKind(decision.kind), Direction.IN
    if unverified:
        kind = MessageKind.UNVERIFIED_COMMAND
    elif tx.officer is not None:
        kind, direction = _staff_kind(read, tx, p.own_addresses)
    elif tx.rating is not None:
        kind = MessageKind.RATING
    elif decision.kind is MessageKind.REQUEST and not tx.new_ticket:
        kind = MessageKind.FOLLOWUP
    tx.message_pk = add_message(
        s,
        office_code=office.code,
        ticket_id=tx.ticket.id if tx.ticket else None,
        direction=direction,
        kind=kind,
        reason=decision.reason,
        message_id=mail.message_id,
        conversation_index=read.hints.conversation,
        dedupe_key=read.dedupe_key,
        folder=read.fetched.mailbox,
        uidvalidity=read.fetched.uidvalidity,
        uid=read.fetched.uid,
        from_email=mail.from_.email if mail.from_ else "",
        from_name=mail.from_.name if mail.from_ else "",
        to_emails=", ".join(a.email for a in (*mail.to, *mail.cc)),
        subject=mail.subject,
        sent_at=mail.date,
        stored_at=read.now,
        body_text=mail.text,
        body_trimmed=read.written,
        defects="\n".join(mail.defects),
        raw_sha256=read.raw_sha256,
        raw=read.fetched.raw,
    )
    if mail.attachments:
        rows = attachment_rows(tx.message_pk, mail.attachments, p.settings.attachments.max_bytes)
        add_attachments(s, rows)
    if tx.ticket is not None and not tx.new_ticket:  # a new ticket counts its first mail itself
        note_ticket_message(s, tx.ticket.id, read.now)
    elif tx.ticket is not None and decision.spam:  # opened closed: say why in its history
        add_ticket_event(
            s,
            ticket_id=tx.ticket.id,
            message_pk=tx.message_pk,
            at=read.now,
            event="closed",
            state=TicketState.CLOSED,
            actor=SPAM_FILTER,
            detail=decision.reason,
        )


def _staff_kind(read: Reading, tx: Attempt, own: frozenset[str]) -> tuple[MessageKind, Direction]:
    """(kind, direction) of an officer's mail: an answer goes out to people; a command or a
    note stays inside the office."""
    if tx.command is not None:
        return MessageKind.STAFF_COMMAND, Direction.IN
    if staff.goes_outside(read.mail, own):
        return MessageKind.STAFF_ANSWER, Direction.OUT
    return MessageKind.STAFF_NOTE, Direction.IN


def _open_ticket(s: Session, read: Reading, tx: Attempt) -> TicketRef:
    office, mail, now = read.office, read.mail, read.now
    year = now.astimezone(office.tz).year
    ref = ticket_ref(office.code, year, next_ticket_seq(s, office.code, year))
    requester = rules.acknowledgement_recipient(mail) or ""
    tx.language = rules.language(mail)
    days = office.complaint_sla_working_days if tx.complaint else None
    tx.due = sla.due_at(office, read.received_at, working_days=days)
    spam = read.decision is not None and read.decision.spam
    state = TicketState.CLOSED if spam else TicketState.OPEN
    ticket_id = add_ticket(
        s,
        resolution=Resolution.SPAM if spam else Resolution.NONE,
        state_changed_at=now if spam else None,
        closed_at=now if spam else None,
        kind=TicketKind.COMPLAINT if tx.complaint else TicketKind.REQUEST,
        ref=ref,
        office_code=office.code,
        state=state,
        requester_email=requester,
        requester_name=mail.from_.name if mail.from_ else "",
        subject=mail.subject,
        subject_key=normalise_subject(mail.subject),
        language=tx.language,
        received_at=read.received_at,
        due_at=tx.due,
        last_message_at=now,
        message_count=1,
        created_at=now,
    )
    return TicketRef(ticket_id, ref, state, requester)


def step_relate(p: Setup, read: Reading, tx: Attempt, s: Session) -> None:
    """The ticket's people and links: the mail's From/To/Cc (not our addresses) become
    participants (officers as staff), a new ticket opened from another is linked to it. (A
    reopened ticket's state and fresh deadline are the lifecycle step's.)"""
    ticket = tx.ticket
    if ticket is None:
        return
    if tx.link_to is not None and tx.new_ticket:
        linked, reason = tx.link_to
        link_tickets(s, ticket.id, linked.id, reason, read.now)
    roles = dict.fromkeys(people_on(read.mail, p.own_addresses), "cc")
    if tx.new_ticket and ticket.requester_email:
        roles[ticket.requester_email] = "requester"
    if tx.officer is not None and tx.officer.email not in p.own_addresses:
        roles[tx.officer.email] = "staff"
    add_participants(s, ticket.id, roles, read.now, known=tx.participants or ())


def step_lifecycle(p: Setup, read: Reading, tx: Attempt, s: Session) -> None:
    """Move the ticket: an officer's answer or command, or the requester writing again."""
    ticket, mail, decision = tx.ticket, read.mail, read.decision
    if ticket is None or tx.new_ticket or decision is None or tx.rating is not None:
        return  # a rating never moves its ticket
    officer = tx.officer
    if officer is not None:
        if tx.command is not None:
            before = ticket_resolution(s, ticket.id) if tx.command.action is staff.Action.CLOSE else ""
            change = lifecycle.staff_command(ticket.state, tx.command, before)
        elif staff.goes_outside(mail, p.own_addresses):
            change = lifecycle.staff_answered(ticket.state)
        elif our_mail_among(s, read.office.code, NOTICE_KINDS, [*mail.in_reply_to, *mail.references]):
            change = lifecycle.staff_comment(ticket.state)  # a head answering a notice: not the answer
        else:
            change = lifecycle.staff_note(ticket.state)
        actor = officer.email
    elif decision.kind is MessageKind.REQUEST and tx.reopen:
        change, actor = lifecycle.requester_reopened(), mail.from_.email if mail.from_ else ""
    elif decision.kind is MessageKind.REQUEST:
        thanks = ticket.state == TicketState.ANSWERED and staff.is_thanks(mail.text)
        found = lifecycle.requester_wrote(ticket.state, thanks, read.office.promise.after_wait)
        if found is None:
            return
        change, actor = found, mail.from_.email if mail.from_ else ""
    else:
        return
    due = None
    days = None
    if change.fresh_clock or change.resume:  # a complaint keeps its own promise
        days = complaints.promise_days(s, read.office, ticket.id)
    if change.fresh_clock:  # counted from this mail like a new one (outside hours: next opening)
        tx.due = due = sla.due_at(read.office, read.received_at, working_days=days)
    elif change.resume:  # the deadline moves by the office time spent waiting
        received, history = ticket_clock(s, ticket.id)
        history.append((read.received_at, change.event, change.state))
        start, paused = lifecycle.clock_basis(received, history, read.received_at)
        tx.due = due = sla.due_at(read.office, start, working_days=days, paused=paused)
    change_ticket(
        s,
        ticket.id,
        state=change.state,
        at=read.received_at,
        resolution=change.resolution,
        due_at=due,
        officer=officer.email if officer is not None else None,
        first_response=change.first_response,
        fresh_clock=change.fresh_clock,
    )
    add_ticket_event(
        s,
        ticket_id=ticket.id,
        message_pk=tx.message_pk,
        at=read.received_at,
        event=change.event,
        state=change.state,
        actor=actor,
        detail=change.detail,
    )
    tx.change = change


def save_cursor(read: Reading, s: Session) -> None:
    """Every mail up to this one is done: committed with them, the cursor never runs ahead."""
    f = read.fetched
    cursors.save_cursor(s, f.office_code, f.mailbox, f.uidvalidity, f.uid, read.now)
