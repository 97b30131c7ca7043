"""The acknowledgement step, inside the transaction (see driver.py for the order).

    … adopt_answers → acknowledge → notify_head

A new request's acknowledgement (ticket number and the promised day), or a complaint's (new,
or made in a conversation: once), rendered into an outbox row committed with the mail; the
outbox sends it. Withheld, with the reason, when the rules say so (auto-reply suppression, an
office address), when staff answered already, when the guard refuses the address (flagged
bouncing or complained) or an hourly limit is reached (per recipient, author, envelope sender
or office: guard.flood_refusal; then also a ticket event `ack_withheld`). It goes to From, or
a Reply-To on From's domain (the ticket's requester); another Reply-To is ignored and logged.
Held until the morning when the mail came long ago and it is night at the office (quiet.py).
"""

from __future__ import annotations

import secrets

from sqlmodel import Session

from mailer.decide import floods, quiet, sla
from mailer.decide.threader import outlook_reply_headers
from mailer.delivery import guard
from mailer.delivery.queue import enqueue
from mailer.pipeline import complaints
from mailer.pipeline.context import Attempt, Reading, Setup
from storage.vocabulary import MessageKind, WithheldEvent


def step_acknowledge(p: Setup, read: Reading, tx: Attempt, s: Session) -> None:
    """A new request's acknowledgement; a complaint's (new, or made in a conversation: once)."""
    decision, ticket = read.decision, tx.ticket
    if not ((tx.new_ticket or tx.complaint_in_conversation) and ticket and decision):
        return
    if not decision.acknowledge:  # e.g. X-Auto-Response-Suppress, an office address: say why
        tx.ack_withheld = decision.reason
        return
    if tx.early_answers and not tx.complaint:  # "we will answer by …" after the answer: no
        tx.ack_withheld = "already answered by staff before the request was read"
        return
    to = complaints.complaint_recipient(read, tx) if tx.complaint else ticket.requester_email
    office, now, mail = read.office, read.now, read.mail
    tx.reply_to_ignored = floods.reply_to_choice(mail.from_, mail.reply_to)[1]
    cause = complaints.cause(read)
    ack = p.settings.acknowledgement
    limits = floods.Limits(ack.max_per_sender_per_hour, ack.max_per_office_per_hour)
    tx.ack_withheld = guard.refusal(s, office.code, to, p.own_addresses)
    if not tx.ack_withheld:
        tx.ack_withheld = guard.flood_refusal(s, office.code, now, (MessageKind.ACK,), limits, to, cause)
        if tx.ack_withheld:  # on the ticket too: staff see why this one got no acknowledgement
            complaints.record_withheld(s, read, tx, WithheldEvent.ACK, tx.ack_withheld)
    if tx.ack_withheld:
        return
    assert tx.due is not None
    # Sent at once, unless its mail came long ago and it is night in the office (quiet.py)
    quiet_after, tx.ack_held_until = quiet.immediate_window(
        read.fetched.received_at, read.mail.date, now, office.tz, ack
    )
    promise, late = tx.due, tx.due <= now
    if late:  # read after its deadline: the ticket stays overdue, the person gets a day still ahead
        days = office.complaint_sla_working_days if tx.complaint else None
        promise = sla.due_at(office, now, working_days=days)
    out = p.renderer.acknowledgement(
        office,
        ticket.ref,
        read.mail,
        to,
        tx.language,
        promise,
        read.received_at,
        tx.ack_held_until or now,  # its Date: when it goes (a held one: the morning, not 03:00)
        template="ack_complaint" if tx.complaint else "ack",
        thread=outlook_reply_headers(read.hints, read.mail.subject, now, secrets.randbelow(256)),
        late=late,
        forwarded=bool(tx.complaint) and not complaints.head_refusal(p, office, s),
    )
    why = "acknowledgement of a complaint in a conversation" if tx.complaint_in_conversation else ""
    reason = why or "acknowledgement of a new request"
    enqueue(s, office, ticket.id, MessageKind.ACK, reason, out, now, tx.ack_held_until, quiet_after, cause)
    tx.outgoing = out
