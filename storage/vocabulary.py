"""The words the tables store, as `StrEnum`s: one spelling each, checked by mypy.

A member *is* its string (`TicketState.OPEN == "open"`), so rows written before these enums
read back the same, and SQL compares them as text. Nothing else in the project spells these
values out: it names the member.

    tickets.state        TicketState       open ─▶ answered ─▶ closed, waiting (paused)
    tickets.kind         TicketKind        request | complaint
    tickets.resolution   Resolution        how it was settled ("" while it is not)
    messages.direction   Direction         in | out
    messages.kind        MessageKind       what a stored mail is, in or out
    outbox.state         OutboxState       pending ─▶ sending ─▶ sent | failed, or suppressed
"""

from __future__ import annotations

from enum import StrEnum


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
    """What a stored mail is. Incoming kinds come from the rules and the threader; outgoing
    kinds name what the desk sent (the outbox's kind is its message's kind)."""

    # in
    REQUEST = "request"  # a person's mail that opened a ticket
    FOLLOWUP = "followup"  # a person's later mail on a ticket
    RATING = "rating"  # a reply that is only a rating (SKM 1-4)
    AUTO_REPLY = "auto_reply"  # out-of-office, vacation, RFC 3834 auto-submitted
    BOUNCE = "bounce"  # delivery status notification, MAILER-DAEMON, null return path
    LIST = "list"  # mailing list or bulk mail
    OWN = "own"  # one of our own mails, come back
    FEEDBACK = "feedback"  # an ARF abuse/complaint report about mail we sent
    STAFF_ANSWER = "staff_answer"  # an officer's answer to the public
    STAFF_NOTE = "staff_note"  # an officer's note to the desk
    STAFF_COMMAND = "staff_command"  # an officer's command (#selesai, #tunggu…) to the desk
    # out
    ACK = "ack"  # acknowledgement of a request or a complaint
    CLOSING = "closing"  # closing mail with a rating request
    NOTICE = "notice"  # reminder or escalation notice to staff and managers
    DIGEST = "digest"  # a manager's morning digest
    REPORT = "report"  # the monthly report to the heads
    COMPLAINT_NOTICE = "complaint_notice"  # a complaint forwarded to the head of office


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
