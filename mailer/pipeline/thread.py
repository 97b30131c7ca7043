"""The first steps inside the transaction: is the mail new, and which ticket is it about?

    dedupe → thread → flags → (rating → store …)

- dedupe: the same mail stored already (another UID, a resync), or the Sent folder's copy of
  a mail we sent ourselves (sent_folder.own_copy): `Duplicate`, nothing is written.
- thread: the ticket the mail belongs to (threader.find_ticket, or a reference an officer
  pasted), and whether it joins it, reopens it, or opens a new ticket linked to it. A command
  in a staff-looking mail that is not authenticated joins nothing (refusal.py).
- flags: a bounce or abuse report that proves it is about our mail (cites a Message-ID the
  desk generated, or is authenticated for the failed address's domain: decide/reports.py)
  joins that mail's ticket and flags the address that failed for good (bouncing) or
  complained; any other report is recorded, ignored. A person writing again lifts their flag.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from mailer.decide import reports, rules, staff
from mailer.decide.threader import Admission, ThreadMatch, admit, find_ticket, within_reopen_window
from mailer.model import Role
from mailer.pipeline import sent_folder
from mailer.pipeline.context import Attempt, Duplicate, Reading, Setup
from storage.conversations import linked_ticket_of, ticket_participants
from storage.flags import clear_address_flags, flag_address
from storage.messages import message_exists
from storage.sent_mail import latest_outgoing_to, queued_by_message_ids
from storage.tickets import TicketRef, ticket_by_ref, ticket_closed_at
from storage.vocabulary import MessageKind, TicketState

BOUNCE_MATCH_WINDOW = timedelta(days=30)  # an authenticated report without our Message-ID: our mail since


def step_dedupe(p: Setup, read: Reading, tx: Attempt, s: Session) -> None:
    """Stored already: the same mail, or the Sent folder's copy of one we sent (our ack…)."""
    if message_exists(s, read.office.code, read.dedupe_key):
        raise Duplicate(read.dedupe_key)
    tx.own_copy = sent_folder.own_copy(read, tx, s)
    if tx.own_copy:
        raise Duplicate(tx.own_copy)


def step_thread(p: Setup, read: Reading, tx: Attempt, s: Session) -> None:
    """Find the ticket (threader.find_ticket) and decide whether the mail joins it, reopens it,
    or opens a new ticket linked to it (threader.admit, the reopen window)."""
    rules_of, mail = p.settings.threading, read.mail
    window = timedelta(days=rules_of.subject_window_days)
    tx.match = match = find_ticket(s, read.office.code, mail, read.now, window, read.hints, p.own_addresses)
    if read.unverified_command is not None:  # not obeyed: the ticket it names is left untouched
        tx.refused_for = match.ticket if match else _pasted_ticket(s, read)
        return
    if match is None and tx.officer is not None:  # officers may paste the reference anywhere
        pasted = _pasted_ticket(s, read)
        if pasted is not None:
            tx.match = match = ThreadMatch(pasted, "ticket_ref_in_text")
    if match is None and tx.command is not None:  # a command leading to no ticket: not a request
        named = ", ".join(staff.ticket_refs(mail))
        tx.refused = staff.RefusedCommand(tx.command.word, staff.Refused.NO_TICKET, named)
        tx.command = None
        return
    if match is None:
        if tx.officer is not None and read.fetched.role is Role.INBOX and tx.officer.how.startswith("staff"):
            tx.officer, tx.command = None, None  # a colleague's new question: a request like anyone's
            tx.refused = None
        return
    assert read.decision is not None
    automatic = read.decision.kind is not MessageKind.REQUEST
    sender = mail.from_.email if mail.from_ else ""
    participants = ticket_participants(s, match.ticket.id)
    if tx.officer is not None:  # the office's staff are on every ticket of the office
        tx.ticket, tx.participants = match.ticket, participants
        return
    verdict = admit(match, sender, participants, automatic)
    if verdict is Admission.NEW_LINKED:
        tx.link_to = (match.ticket, "not_a_participant")
    elif verdict is Admission.JOIN and match.ticket.state == TicketState.CLOSED and not automatic:
        closed_at = ticket_closed_at(s, match.ticket.id)
        if within_reopen_window(closed_at, read.received_at, timedelta(days=rules_of.reopen_days)):
            tx.ticket, tx.participants, tx.reopen = match.ticket, participants, True
        else:
            tx.link_to = (match.ticket, "reopen_window_passed")
    elif verdict is Admission.JOIN:
        tx.ticket, tx.participants = match.ticket, participants
    if tx.link_to is not None and (requester := rules.acknowledgement_recipient(mail)):
        # the same person writing again the same way continues the ticket opened for them (the
        # sender on it: a Reply-To naming its requester alone does not get a stranger in)
        earlier = linked_ticket_of(s, match.ticket.id, requester)
        if earlier is not None and sender in (known := ticket_participants(s, earlier.id)):
            tx.ticket, tx.link_to, tx.participants = earlier, None, known


def _pasted_ticket(s: Session, read: Reading) -> TicketRef | None:
    """The first of the office's tickets whose reference the mail's subject or text names."""
    for ref in staff.ticket_refs(read.mail):
        found = ticket_by_ref(s, ref, office=read.office.code)
        if found is not None:
            return found
    return None


def step_flags(p: Setup, read: Reading, tx: Attempt, s: Session) -> None:
    """A report about one of our mails joins that mail's ticket and flags the address that
    failed for good (bouncing) or complained, when it proves it is about our mail
    (decide/reports.py; else it is recorded as an ignored report); a person writing again lifts
    their flag, bouncing or complained."""
    decision, office = read.decision, read.office
    assert decision is not None
    if decision.kind is MessageKind.REQUEST and read.mail.from_ is not None:
        if clear_address_flags(s, office.code, read.mail.from_.email):
            tx.unflagged.append(read.mail.from_.email)
        return
    report = read.report
    if report is None:
        return
    ours = queued_by_message_ids(s, office.code, report.cited_ids)
    domain = "" if ours is not None else _authenticated_domain(read)
    verdict = reports.standing(report, ours.recipients if ours else None, domain, p.own_addresses)
    flagged = list(verdict.addresses)
    if ours is None and flagged:  # authenticated, citing none of ours: our mail to those it names
        since = read.now - BOUNCE_MATCH_WINDOW
        sent = {a: latest_outgoing_to(s, office.code, a, since) for a in flagged}
        flagged = [a for a, mail in sent.items() if mail is not None]
        ours = next((mail for mail in sent.values() if mail is not None), None)
    if ours is None:  # kept without a ticket, flagging nobody: forged, backscatter, or unprovable
        if verdict.addresses:
            tx.report_ignored = f"{verdict.why}, but no mail of ours went there"
        elif verdict.ignored:
            tx.report_ignored = verdict.why
        return
    if ours.ticket is not None:
        tx.ticket, tx.match = ours.ticket, ThreadMatch(ours.ticket, f"{report.kind}_report")
    flag, reason = ("complained" if report.kind == "arf" else "bouncing"), report.summary()
    ticket_id = ours.ticket.id if ours.ticket else None
    for address in flagged:
        if flag_address(s, office.code, address, flag, read.now, reason, ticket_id):
            tx.flagged.append((address, flag, reason))


def _authenticated_domain(read: Reading) -> str:
    """The domain the office's receiving server authenticated the report's sender for, or ""."""
    sender = read.mail.from_.email if read.mail.from_ else ""
    if not sender or not read.office.staff.authserv_ids:
        return ""
    passed, _why = staff.authenticated(read.fetched.raw, sender, read.office.staff)
    return sender.rpartition("@")[2] if passed else ""
