"""The pipeline's steps for complaints and ratings (see pipeline.py for the driver).

    … identify → report → complaint │ dedupe → thread → flags → rating → store → relate
                                    │   → lifecycle → complaint_followup → acknowledge → notify_head → cursor

- complaint (pure): a new mail that complains about the service opens a ticket of kind
  "complaint" (its own acknowledgement wording and promise: complaint.py has the rule).
- complaint_followup: a follow-up that complains, in a conversation that is a request, makes
  the ticket a complaint once (event `complaint`; the complaint promise counted from that
  mail, never later than the deadline it had); the acknowledge and notify_head steps then
  send the complaint acknowledgement and the notice to the head, as for a new complaint.
- rating: a reply to our closing mail, or a mail whose subject carries the rating marker of
  one of the office's tickets, that gives a score (1–4) is recorded as the ticket's rating; it
  never reopens the ticket and is never acknowledged.
- notify_head: a complaint (new, or made in a conversation) goes straight to the head of
  office (`offices.X.head`), held until the office's next opening.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from babel.dates import format_datetime as babel_datetime
from sqlmodel import Session

from mailer import log
from mailer.decide import complaint, rating, rules, sla
from mailer.delivery import guard
from mailer.delivery.outbox import enqueue
from mailer.delivery.render import promised_date_text
from mailer.model import MailKind
from mailer.settings import Office
from storage import repo

if TYPE_CHECKING:
    from mailer.pipeline.driver import MailContext, Pipeline

logger = log.get(__name__)


def step_complaint(p: Pipeline, ctx: MailContext) -> None:
    """Is a person's mail a complaint about the service? (Decided for every mail; it matters
    when the mail opens a new ticket, or as a follow-up that turns its ticket into one.)"""
    if ctx.decision is None or ctx.decision.kind is not MailKind.REQUEST or ctx.officer is not None:
        return
    if ctx.decision.spam:
        return  # spam in complaint words is not forwarded to the head of office
    ctx.complaint = complaint.reason(ctx.mail, ctx.office.complaint_addresses)


def step_rating(p: Pipeline, ctx: MailContext, s: Session) -> None:
    """A rating of a ticket: the marker in the subject, or a score in a reply to our closing mail."""
    mail, office = ctx.mail, ctx.office
    if ctx.decision is None or ctx.decision.kind is not MailKind.REQUEST or ctx.officer is not None:
        return
    marked = rating.subject_rating(mail.subject, office.code)
    score = marked.score if marked is not None else rating.reply_score(ctx.written)
    if score is None:
        return  # no marker, no score: any mail (a reply to the closing mail with no score too)
    closing_of = None
    if marked is None:  # a plain score: only as a reply to our closing mail (one query, rarely)
        closing = repo.our_mail_among(s, office.code, ("closing",), [*mail.in_reply_to, *mail.references])
        if closing is None or closing.ticket_id is None:
            return
        closing_of = closing.ticket_id
    ticket = ctx.ticket
    if ticket is None and ctx.link_to is not None and ctx.link_to[1] == "reopen_window_passed":
        ticket = ctx.link_to[0]  # the requester, on a ticket closed long ago: still theirs to rate
    if ticket is None or (marked is not None and marked.ref != ticket.ref):
        return  # not someone on the ticket the marker names: handled as any mail
    if marked is None and closing_of != ticket.id:
        return
    if ctx.ticket is None:
        ctx.participants = repo.ticket_participants(s, ticket.id)
    ctx.ticket, ctx.link_to, ctx.reopen = ticket, None, False
    ctx.rating, ctx.rating_how = score, "mailto" if marked is not None else "reply"
    sender = mail.from_.email if mail.from_ else ""
    repo.save_rating(s, ticket.id, office.code, score, ctx.rating_how, sender, mail.message_id, ctx.now)


def step_complaint_followup(p: Pipeline, ctx: MailContext, s: Session) -> None:
    """A person's follow-up that complains, in a conversation that is still a request: the
    ticket becomes a complaint (once), with the complaint promise from this mail."""
    ticket, office = ctx.ticket, ctx.office
    if ticket is None or ctx.new_ticket or not ctx.complaint or ctx.rating is not None:
        return
    if ctx.change is not None and ctx.change.event == "thanked":
        ctx.complaint = ""  # "terima kasih atas tanggapan pengaduan saya" thanks, it does not complain
        return
    facts = repo.complaint_facts(s, ticket.id)
    if facts.kind == "complaint":
        ctx.complaint = ""  # already one: acknowledged and forwarded when it became one
        return
    if ctx.complaint.startswith(complaint.BODY_RULE):  # read again without what earlier mails said
        history = repo.ticket_history_texts(s, ticket.id, before=ctx.message_pk)
        ctx.complaint = complaint.reason(ctx.mail, office.complaint_addresses, history)
        if not ctx.complaint:
            return
    due = sla.due_at(office, ctx.received_at, working_days=office.complaint_sla_working_days)
    if not (ctx.change is not None and ctx.change.fresh_clock):  # never later than it was due
        due = min(due, ctx.due or facts.due_at)
    if not repo.make_complaint(s, ticket.id, due):
        ctx.complaint = ""
        return
    state = ctx.change.state if ctx.change is not None else ticket.state
    sender = ctx.mail.from_.email if ctx.mail.from_ else ""
    repo.add_ticket_event(
        s, ticket_id=ticket.id, message_pk=ctx.message_pk, at=ctx.received_at, event="complaint",
        state=state, actor=sender, detail=ctx.complaint,
    )  # fmt: skip
    ctx.complaint_in_conversation, ctx.due, ctx.language = True, due, facts.language


def complaint_recipient(ctx: MailContext) -> str:
    """Who is told their complaint was received: the requester of a new ticket, the person
    who wrote it in a conversation (the requester or someone on the ticket)."""
    assert ctx.ticket is not None
    if ctx.complaint_in_conversation:
        return rules.acknowledgement_recipient(ctx.mail) or ""
    return ctx.ticket.requester_email


def step_notify_head(p: Pipeline, ctx: MailContext, s: Session) -> None:
    """A complaint (a new one, or one made in a conversation), forwarded to the head of office
    (no head configured: nothing)."""
    ticket, office = ctx.ticket, ctx.office
    fresh = ctx.new_ticket or ctx.complaint_in_conversation
    if not (fresh and ctx.complaint and ticket is not None and office.head):
        return
    refused = guard.refusal(s, office.code, office.head, p.own_addresses)
    if refused:
        ctx.warnings.append(f"complaint not sent to the head of office: {refused}")
        return
    assert ctx.due is not None
    mail = ctx.mail
    received = babel_datetime(ctx.received_at.astimezone(office.tz), "EEEE, d MMMM y HH.mm", locale="id")
    context = {
        "requester": mail.from_.formatted() if mail.from_ else ticket.requester_email,
        "subject": " ".join(mail.subject.split()) or "-",
        "text": ctx.written or mail.text.strip(),  # what they wrote (the trim step)
        "received_text": f"{received} {office.time_zone_label}",
        "due_text": promised_date_text(ctx.due, office, "id"),
        "reason": ctx.complaint,
        "in_conversation": ctx.complaint_in_conversation,
    }
    reply_to = ", ".join(a for a in (complaint_recipient(ctx), office.email) if a)
    out = p.renderer.compose(
        office,
        "complaint_head",
        "id",
        context,
        office.head,
        ticket.ref,
        ctx.now,
        extra=[("Reply-To", reply_to)],
    )
    why = "a complaint, to the head of office"  # should the sending slip into the night: the morning
    outbox_id = enqueue(
        s, office, ticket.id, MailKind.COMPLAINT_NOTICE, why, out, ctx.now, quiet_after=ctx.now
    )
    opening = sla.clock_start(office, ctx.now)
    if opening > ctx.now:
        repo.defer_outbox(s, outbox_id, opening)


def promise_days(s: Session, office: Office, ticket_id: int) -> int:
    """The working days of a ticket's promise: the complaint figure for a complaint."""
    complaint = repo.ticket_kind(s, ticket_id) == "complaint"
    return office.complaint_sla_working_days if complaint else office.sla_working_days


def report(ctx: MailContext, created: bool) -> None:
    """Log what these steps did (inside the pipeline's bound context)."""
    if ctx.rating is not None:
        logger.info("rating_recorded", score=ctx.rating, how=ctx.rating_how)
    if (created or ctx.complaint_in_conversation) and ctx.complaint:
        logger.info(
            "complaint_received",
            reason=ctx.complaint,
            head=ctx.office.head or None,
            in_conversation=ctx.complaint_in_conversation,
        )
