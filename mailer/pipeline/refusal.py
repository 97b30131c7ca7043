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

from typing import Any

from sqlmodel import Session

from mailer import log
from mailer.decide import quiet, staff
from mailer.decide.staff import Refused
from mailer.delivery import guard
from mailer.delivery.queue import enqueue
from mailer.pipeline.context import Attempt, Reading, Setup
from storage.vocabulary import MessageKind, TicketState

logger = log.get(__name__)
TEMPLATE = "command_refused"
MAX_PER_ADDRESS_PER_HOUR = 1  # to a staff-looking address whose mail was not authenticated
MAX_TO_OFFICER_PER_HOUR = 20  # to an authenticated officer (a typo, a missing ticket number)


def step_refuse_command(p: Setup, read: Reading, tx: Attempt, s: Session) -> None:
    """Tell the officer whose command was not carried out why, and what to do instead."""
    refused, office = tx.refused, read.office
    if refused is None or read.mail.from_ is None:
        return
    to = read.mail.from_.email
    verified = refused.why is not Refused.UNVERIFIED
    if not verified and to != office.email and not office.staff.knows(to):
        tx.refusal_withheld = f"{to} is not an address of the office's staff"  # identify said it was
        return
    limit = MAX_TO_OFFICER_PER_HOUR if verified else MAX_PER_ADDRESS_PER_HOUR
    named = tx.refused_for or tx.ticket
    ref = named.ref if named else None
    context = {
        "word": refused.word,
        "reason": refused.why.value,
        "detail": refused.detail,
        "known": staff.command_words(),
        "authserv_ids": office.staff.authserv_ids,
    }
    why = f"#{refused.word} not carried out ({refused.why}): the officer is told why"
    tx.refusal_queued = _tell(p, read, tx, s, TEMPLATE, context, ref, MessageKind.COMMAND_REFUSED, limit, why)


def step_confirm_command(p: Setup, read: Reading, tx: Attempt, s: Session) -> None:
    """With `staff.confirm_commands`, tell the officer that a command was carried out."""
    if not read.office.staff.confirm_commands or read.mail.from_ is None:
        return
    if tx.command is None or tx.change is None or tx.ticket is None:
        return
    context = {"word": tx.command.word, "outcome": OUTCOMES.get(tx.change.state, tx.change.state)}
    why = f"#{tx.command.word} carried out: the officer is told"
    _tell(p, read, tx, s, "command_done", context, tx.ticket.ref, MessageKind.COMMAND_DONE, 60, why)


OUTCOMES = {
    TicketState.CLOSED: "tiket ditutup",
    TicketState.WAITING: "tiket menunggu jawaban pemohon; tenggat dihentikan sementara",
    TicketState.ANSWERED: "tiket dicatat terjawab",
    TicketState.OPEN: "tiket dibuka kembali",
}


def _tell(
    p: Setup,
    read: Reading,
    tx: Attempt,
    s: Session,
    template: str,
    context: dict[str, Any],
    ref: str | None,
    kind: MessageKind,
    per_hour: int,
    why: str,
) -> bool:
    """Queue one short mail to the From address of the officer's mail, threaded under it, at
    most `per_hour` of this kind an hour to that address; held in the quiet hours. Whether it
    was queued (else `tx.refusal_withheld` says why)."""
    office, now = read.office, read.now
    assert read.mail.from_ is not None
    to = read.mail.from_.email
    # The office's own address is one of the desk's (guard.refusal refuses those): the mail goes
    # back into the office mailbox, where it is read as our own mail (rules.OWN) and answered never.
    refused = "" if to == office.email else guard.refusal(s, office.code, to, p.own_addresses)
    tx.refusal_withheld = refused or guard.rate_refusal(s, office.code, to, now, (kind,), per_hour)
    if tx.refusal_withheld:
        return False
    ack = p.settings.acknowledgement
    quiet_after, held = quiet.immediate_window(read.fetched.received_at, read.mail.date, now, office.tz, ack)
    thread = [read.mail.message_id] if read.mail.message_id else []
    out = p.renderer.compose(office, template, "id", context, to, ref, held or now, thread=thread)
    enqueue(s, office, None, kind, why, out, now, held, quiet_after)
    return True


def report(read: Reading, tx: Attempt) -> None:
    """Log a refused command (inside the driver's bound context; the ticket it named bound)."""
    if tx.refused is None:
        return
    logger.warning(
        "staff_command_refused",
        ticket=tx.refused_for.ref if tx.refused_for else None,
        command=f"#{tx.refused.word}",
        why=tx.refused.why.value,
        detail=tx.refused.detail or None,
        sender=read.mail.from_.email if read.mail.from_ else "",
        reason=next((w for w in read.warnings if "not authenticated" in w), None),
        told=tx.refusal_queued,
        withheld=tx.refusal_withheld or None,
    )
