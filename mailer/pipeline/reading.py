"""The pure steps: what one mail is, read without the database (see driver.py for the order).

    parse → trim → classify → identify → report → complaint

Each takes the Reading so far and returns it with its own fields set (a frozen value: the
steps inside the transaction read it, never change it).

- parse: the MIME mail, its digest, its dedupe key, Outlook's conversation headers.
- trim: what the person wrote, without quoted history and signature.
- classify: the rules' verdict (request, auto-reply, bounce, list, our own, feedback).
- identify: an officer's mail (Sent folder, office account, staff address), and its command;
  a command in a staff-looking mail that is not authenticated, kept to be refused (refusal.py).
- report: what a bounce or an abuse report says about which of our mails.
- complaint: a person's mail that complains about the service (complaint.py has the rule),
  or any person's mail found in the office's complaint mailbox; it opens a ticket of kind
  "complaint", or turns its conversation into one (complaints.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

from mailer.decide import complaint, rules, staff
from mailer.decide.threader import outlook_hints
from mailer.decide.trim import trim
from mailer.intake import bounces
from mailer.intake.parse import big_preview, parse, parse_big
from mailer.model import ParsedMail, Role
from mailer.pipeline.context import Reading, Setup
from storage.vocabulary import MessageKind


def dedupe_key(message_id: str | None, raw: bytes, mail: ParsedMail) -> str:
    """Identity of a mail across folders and resyncs: its Message-ID plus a digest of its body
    (the bytes after the header block) and of the headers its author wrote (From, To, Cc,
    Subject, Date). Copies of one mail differ only in trace headers (Received, Delivered-To,
    Return-Path), so they share it; different mails that reuse a Message-ID don't."""
    split, lf = raw.find(b"\r\n\r\n"), raw.find(b"\n\n")
    body = memoryview(raw)  # sliced without a copy: a big mail's bytes are not doubled
    body = body[split + 4 :] if split >= 0 else body[lf + 2 :] if lf >= 0 else body
    digest = hashlib.sha256(body)
    people = [a.email for a in (mail.from_, *mail.to, *mail.cc) if a is not None]
    stamp = mail.date.isoformat() if mail.date else ""
    digest.update("\0".join([mail.subject, stamp, *people]).encode("utf-8", "surrogatepass"))
    return f"mid:{message_id}:{digest.hexdigest()[:32]}" if message_id else f"body:{digest.hexdigest()[:32]}"


def step_parse(p: Setup, read: Reading) -> Reading:
    """A mail over daemon.max_parse_bytes is read from its header and the start of its body
    (parse_big); the digests still cover all of it."""
    raw = read.fetched.raw
    limit = p.settings.daemon.max_parse_bytes
    readable = raw if len(raw) <= limit else big_preview(raw)
    parsed = parse(raw) if readable is raw else parse_big(raw, limit)
    return replace(
        read,
        raw_sha256=hashlib.sha256(raw).hexdigest(),
        parsed=parsed,
        dedupe_key=dedupe_key(parsed.message_id, raw, parsed),
        hints=outlook_hints(readable),
        readable=readable,
    )


def step_trim(p: Setup, read: Reading) -> Reading:
    return replace(read, written=trim(read.mail.text)[0])


def step_classify(p: Setup, read: Reading) -> Reading:
    return replace(read, decision=rules.decide(read.mail, p.own_addresses))


def step_identify(p: Setup, read: Reading) -> Reading:
    """Is it an officer's mail (Sent folder, office account, staff address), and a command?"""
    if read.decision is None or read.decision.kind is not MessageKind.REQUEST:
        return read  # auto-replies, bounces, our own mail: nobody's answer
    fetched = read.fetched
    officer, why = staff.identify(read.mail, read.readable, read.office, fetched.role, p.own_addresses)
    warnings: tuple[str, ...] = (*read.warnings, why) if why else read.warnings
    if officer is None and why:  # staff-looking, not authenticated: a command in it is not obeyed
        unverified, _ = staff.command(read.mail, p.own_addresses)
        refused = staff.RefusedCommand(unverified.word, staff.Refused.UNVERIFIED) if unverified else None
        return replace(read, warnings=warnings, unverified_command=unverified, refused=refused)
    if officer is None:
        return read
    command, why = staff.command(read.mail, p.own_addresses)
    refused = staff.refused_command(read.mail, p.own_addresses) if command is None else None
    return replace(
        read,
        officer=officer,
        command=command,
        refused=refused,
        warnings=(*warnings, why) if why else warnings,
    )


def step_report(p: Setup, read: Reading) -> Reading:
    """A bounce or complaint: read what it says about which of our mails (pure)."""
    if read.decision is not None and read.decision.kind in (MessageKind.BOUNCE, MessageKind.FEEDBACK):
        return replace(read, report=bounces.read_report(read.readable))
    return read


def step_complaint(p: Setup, read: Reading) -> Reading:
    """Is a person's mail a complaint about the service? (Decided for every mail; it matters
    when the mail opens a new ticket, or as a follow-up that turns its ticket into one.)"""
    if read.decision is None or read.decision.kind is not MessageKind.REQUEST or read.officer is not None:
        return read
    if read.decision.spam:
        return read  # spam in complaint words is not forwarded to the head of office
    box = read.office.complaint_mailbox
    if read.fetched.role is Role.COMPLAINT and box is not None:
        return replace(read, complaint=complaint.MAILBOX_RULE.format(box.email))
    return replace(read, complaint=complaint.reason(read.mail, read.office.complaint_addresses))
