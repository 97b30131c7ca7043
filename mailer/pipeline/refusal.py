"""The refusal step, inside the transaction (see driver.py for the order).

    … acknowledge → notify_head → refuse_command

A mail from a staff-looking address (the office's own, or one of `offices.X.staff`) that carries
a command word (#tutup, #selesai, #spam, …) but is not authenticated (`staff.require_authentication`
and no passing Authentication-Results of the office's server: decide/staff.py) is not obeyed:
the identify step keeps the command aside, the thread step joins it to no ticket (the ticket it
names is left untouched) and the store step keeps it as an `unverified_command`. This step tells
the officer why, in one short mail (template `command_refused`) to the From address itself —
never to a Reply-To, never to an address that is not the office's staff — at most one an hour
to an address (guard.rate_refusal), through the outbox like any mail of the office, held until
the morning when the mail came long ago and it is night at the office (quiet.py). A forged
From gets the same mail, which then tells the real officer that someone tried.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from mailer import log
from mailer.decide import quiet
from mailer.delivery import guard
from mailer.delivery.outbox import enqueue
from mailer.pipeline.context import Attempt, Reading, Setup
from storage.vocabulary import MessageKind

logger = log.get(__name__)
TEMPLATE = "command_refused"
MAX_PER_ADDRESS_PER_HOUR = 1


def step_refuse_command(p: Setup, read: Reading, tx: Attempt, s: Session) -> None:
    """Tell the staff address whose unverified command was not carried out why, and how."""
    command, office, now = read.unverified_command, read.office, read.now
    if command is None or read.mail.from_ is None:
        return
    to = read.mail.from_.email
    if to != office.email and not office.staff.knows(to):
        tx.refusal_withheld = f"{to} is not an address of the office's staff"  # identify said it was
        return
    # The office's own address is one of the desk's (guard.refusal refuses those): the mail goes
    # back into the office mailbox, where it is read as our own mail (rules.OWN) and answered never.
    refused = "" if to == office.email else guard.refusal(s, office.code, to, p.own_addresses)
    tx.refusal_withheld = refused or guard.rate_refusal(
        s, office.code, to, now, (MessageKind.COMMAND_REFUSED,), MAX_PER_ADDRESS_PER_HOUR
    )
    if tx.refusal_withheld:
        return
    ack = p.settings.acknowledgement
    received = quiet.received_time(read.fetched.received_at, read.mail.date, now)
    quiet_after = received + timedelta(minutes=ack.immediate_within_minutes)
    held = quiet.hold_until(quiet_after, now, office.tz, ack.quiet_hours)
    ref = tx.refused_for.ref if tx.refused_for else None
    context = {"word": command.word, "authserv_ids": office.staff.authserv_ids}
    thread = [read.mail.message_id] if read.mail.message_id else []
    out = p.renderer.compose(office, TEMPLATE, "id", context, to, ref, held or now, thread=thread)
    why = "an unverified staff command, not carried out: the officer is told why"
    enqueue(s, office, None, MessageKind.COMMAND_REFUSED, why, out, now, held, quiet_after)
    tx.refusal_queued = True


def report(read: Reading, tx: Attempt) -> None:
    """Log a refused command (inside the driver's bound context; the ticket it named bound)."""
    if read.unverified_command is None:
        return
    logger.warning(
        "staff_command_refused",
        ticket=tx.refused_for.ref if tx.refused_for else None,
        command=f"#{read.unverified_command.word}",
        sender=read.mail.from_.email if read.mail.from_ else "",
        reason=next((w for w in read.warnings if "not authenticated" in w), ""),
        told=tx.refusal_queued,
        withheld=tx.refusal_withheld or None,
    )
