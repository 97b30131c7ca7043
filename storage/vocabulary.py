"""The words the tables store, as `StrEnum`s (the notice level an `IntEnum`): one spelling each,
checked by mypy.

A member *is* its string (`TicketState.OPEN == "open"`), so rows written before these enums
read back the same, and SQL compares them as text. Nothing else in the project spells these
values out: it names the member.

    tickets.state        TicketState       open ─▶ answered ─▶ closed, waiting (paused)
    tickets.kind         TicketKind        request | complaint
    tickets.resolution   Resolution        how it was settled ("" while it is not)
    messages.direction   Direction         in | out
    messages.kind        MessageKind       what a stored mail is: fetched, or sent by the desk
    outbox.state         OutboxState       pending ─▶ sending ─▶ sent | failed, or suppressed
    notices.level        NoticeLevel       reminder 0 ─▶ office_head 1 ─▶ province_head 2 ─▶ national 3
    ticket_events.event  WithheldEvent     an automatic mail an hourly limit withheld (the other
                                           events are still spelled where they are written)

Operators see an outbox row in a ShownOutboxState (a pending mail already tried is `deferred`).
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class TicketState(StrEnum):
    """Where a ticket is in its life (mailer/decide/lifecycle.py moves it)."""

    OPEN = "open"  # awaiting the office's answer; the SLA clock runs
    ANSWERED = "answered"  # answered or settled without a reply; the clock is stopped
    WAITING = "waiting"  # the office waits for the requester (#tunggu); the clock is paused
    CLOSED = "closed"  # done: #selesai / #tutup, or quiet for closing.after_days


class TicketKind(StrEnum):
    """What the public asked for."""

    REQUEST = "request"  # a question about data, metadata or classifications
    COMPLAINT = "complaint"  # a complaint about the service (pengaduan)


class Resolution(StrEnum):
    """How a ticket was settled; NONE while it is not (a reopened ticket clears it)."""

    NONE = ""
    ANSWERED = "answered"  # an officer answered, or #terjawab
    THANKS = "thanks"  # #terimakasih: the requester only thanked
    SPAM = "spam"  # #spam, or the receiving server's spam flag
    DUPLICATE = "duplicate"  # #duplikat
    CLOSED = "closed"  # #selesai / #tutup


# Settled so that nobody is written to again on it (no closing mail, no rating request).
NOT_TO_ANSWER: tuple[Resolution, ...] = (Resolution.SPAM, Resolution.DUPLICATE)


class Direction(StrEnum):
    """Which way a stored mail went."""

    IN = "in"
    OUT = "out"


class MessageKind(StrEnum):
    """What a stored mail is. A fetched mail's kind comes from the rules' verdict (REQUEST to
    FEEDBACK: mailer.model.Decision), then the threader and the staff check (FOLLOWUP, RATING,
    STAFF_*); the desk's own mail is named by what it sent (the outbox's kind is its message's
    kind). Direction: STAFF_ANSWER and the desk's own kinds are `out`, the others `in`."""

    # fetched: the rules' verdict
    REQUEST = "request"  # a person's mail that opened a ticket
    AUTO_REPLY = "auto_reply"  # out-of-office, vacation, RFC 3834 auto-submitted
    BOUNCE = "bounce"  # delivery status notification, MAILER-DAEMON, null return path
    LIST = "list"  # mailing list or bulk mail
    OWN = "own"  # one of our own mails, come back
    FEEDBACK = "feedback"  # an ARF abuse/complaint report about mail we sent
    # fetched: after threading and the staff check
    FOLLOWUP = "followup"  # a person's later mail on a ticket
    RATING = "rating"  # a reply that is only a rating (SKM 1-4)
    STAFF_ANSWER = "staff_answer"  # an officer's answer to the public (direction out)
    STAFF_COMMAND = "staff_command"  # an officer's #command, sent only to the office
    STAFF_NOTE = "staff_note"  # an officer's note to the office, no command
    UNVERIFIED_COMMAND = "unverified_command"  # a staff-looking #command, not authenticated: not obeyed
    # sent by the desk (outbox)
    ACK = "ack"  # acknowledgement of a request or a complaint
    CLOSING = "closing"  # closing mail with a rating request
    NOTICE = "notice"  # reminder or escalation notice to staff and managers
    DIGEST = "digest"  # a manager's morning digest
    REPORT = "report"  # the monthly report to the heads
    COMPLAINT_NOTICE = "complaint_notice"  # a complaint forwarded to the head of office
    COMMAND_REFUSED = "command_refused"  # to a staff address: its #command was not carried out, why
    COMMAND_DONE = "command_done"  # to an officer: the #command was carried out (staff.confirm_commands)


class WithheldEvent(StrEnum):
    """A ticket event saying an hourly limit withheld an automatic mail (mailer/decide/floods.py);
    its actor is the author of the mail that would have caused it, its detail the limit reached."""

    ACK = "ack_withheld"  # no acknowledgement
    COMPLAINT_NOTICE = "complaint_notice_withheld"  # no notice to the head: a line in the digest


class OutboxState(StrEnum):
    """Delivery state of one outgoing mail (outbox.state)."""

    PENDING = "pending"  # due at next_attempt_at (tried before: shown as deferred)
    SENDING = "sending"  # handed to a sender; a restart sends it again
    SENT = "sent"  # the server accepted it (250)
    FAILED = "failed"  # refused for good (5xx) or out of attempts
    SUPPRESSED = "suppressed"  # found at send time no longer to go


class ShownOutboxState(StrEnum):
    """An outbox row as operators see it: a pending mail already tried is `deferred`."""

    PENDING = "pending"
    DEFERRED = "deferred"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"


class NoticeLevel(IntEnum):
    """A rung of the escalation ladder (mailer/timed/escalate.py): notices.level stores the
    number; `label` names it in the X-PST-Notice header, logs and a digest manager's role."""

    REMINDER = 0  # the office's staff, before the deadline
    OFFICE_HEAD = 1  # the head of the office, at the deadline
    PROVINCE_HEAD = 2  # the province's PST head, some working days later
    NATIONAL = 3  # the national PST head, later still

    @property
    def label(self) -> str:
        """ "reminder", "office_head", "province_head", "national"."""
        return self.name.lower()
