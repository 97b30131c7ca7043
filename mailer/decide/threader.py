"""Which ticket an incoming mail belongs to, if any, and whether it may join it.

Matchers are tried in order; the first that finds a ticket wins:
1. In-Reply-To / References against every Message-ID stored for the office (the mails we
   received and the ones we sent, whose IDs are unguessable).
2. The ticket tag in the subject, e.g. "Re: Data inflasi [PST-3514-2026-00042]".
3. Outlook's Thread-Index: its first 22 bytes name the conversation (each reply appends 5),
   so a mail whose conversation part equals a stored message's continues that ticket.
4. Last, the same sender with a reply-prefixed subject ("RE: …") equal, once normalised, to a
   ticket's (or the same Outlook Thread-Topic), on a ticket active within
   `threading.subject_window_days`: Outlook on the web and some phones send replies with no
   References at all. A subject match never brings new people into a ticket, and when the
   sender has several such tickets the one whose text the reply quotes wins (none: no match).

Who may join (`admit`): a match through a Message-ID the desk generated itself (an ack, a
closing mail, a notice: 128 random bits, seen only by whom we sent it to) is trusted whoever
writes: someone our ack was forwarded to may continue the ticket. Any other match — a
Message-ID of a mail we received or an officer's client made (seen by everyone it went to,
perhaps guessable), the subject tag (a sequential number), Thread-Index, the subject — joins
only if the sender is a participant of the ticket (requester, people in From/To/Cc of its
mails, staff). What the mail's own To/Cc claim proves nothing: a "reply-all" Cc'ing the
requester may never have reached her. Otherwise the mail opens a new ticket linked to the old
one, and automatic mail (out-of-office, bounces) from a non-participant is recorded without a
ticket.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlmodel import Session

from mailer.decide.rules import acknowledgement_recipient
from mailer.model import ParsedMail
from storage import conversations, tickets
from storage.tickets import TicketRef

TAG = re.compile(r"\[?\b(PST-(\d{4})-\d{4}-\d{5,})\b\]?")
# Reply and forward prefixes of the clients the public and staff use (English, German, French,
# Indonesian Gmail/Outlook), bare, counted ("Re[2]:", "RE(3):") or bracketed ("[Fwd: …]"),
# and the "[EXTERNAL]" banners mail gateways add.
_PREFIX = re.compile(
    r"^\s*(?:(?:re|fwd?|aw|wg|tr|balas|bls|trs|teruskan|antw|sv|vs|ref|rif)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]"
    r"|\[(?:external|eksternal|ext|spam\??)\]|\*\*\*\s*spam\s*\*\*\*)\s*",
    re.IGNORECASE,
)
_BRACKETED = re.compile(r"^\s*\[\s*(?:fwd?|re)\s*:\s*(.*)\]\s*$", re.IGNORECASE)
# What clients show (and then send, prefixed, in a reply) for a mail without a subject: not a
# conversation's name, so it normalises to "" and never matches by subject.
_NO_SUBJECT = frozenset(
    {"(no subject)", "no subject", "(tanpa subjek)", "(tidak ada subjek)", "(tanpa judul)", "(kein betreff)",
     "(sans objet)", "(sin asunto)", "(nessun oggetto)", "(sem assunto)", "(untitled)"}
)  # fmt: skip
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_UNFOLD = re.compile(rb"\r?\n[ \t]+")
_OUTLOOK = re.compile(rb"(?i)\nthread-(?:index|topic):")
_THREAD_INDEX = re.compile(rb"(?im)^thread-index:[ \t]*([A-Za-z0-9+/=]+)")
_THREAD_TOPIC = re.compile(rb"(?im)^thread-topic:[ \t]*([^\r\n]*)")
CONVERSATION_BYTES = 22  # Thread-Index: 6 bytes of FILETIME + a 16-byte GUID; replies append 5
_QUOTE_MARKS = re.compile(r"^[\s>|]+", re.MULTILINE)
_MIN_QUOTED_LINE = 30  # shorter lines ("Terima kasih.", greetings) say nothing about a thread


@dataclass(frozen=True, slots=True)
class ThreadMatch:
    """The ticket found and how: "references", "subject_tag", "thread_index" or
    "same_sender_subject"; `trusted` when through one of our own outgoing Message-IDs."""

    ticket: TicketRef
    how: str
    trusted: bool = False


@dataclass(frozen=True, slots=True)
class OutlookHints:
    """Outlook's conversation headers: the Thread-Index conversation part (hex), Thread-Topic,
    and the whole Thread-Index (header and response levels, b"" without one) a reply extends."""

    conversation: str | None = None
    topic: str = ""
    index: bytes = b""


NO_HINTS = OutlookHints()


class Admission(StrEnum):
    """What a matched mail does to the ticket found."""

    JOIN = "join"
    NEW_LINKED = "new_linked"  # a new ticket, linked to the one found
    RECORD = "record"  # kept without a ticket (automatic mail from a stranger)


def normalise_subject(subject: str) -> str:
    """The subject a conversation keeps however clients prefix it: "RE: Balas: [EXTERNAL] Fwd:
    Data IPM [PST-3514-2026-00001]" → "data ipm". Ticket tags are dropped, case and spaces folded;
    a client's placeholder for no subject ("Re: (tanpa subjek)") gives ""."""
    text = TAG.sub(" ", subject)
    while True:
        bracketed = _BRACKETED.match(text)
        if bracketed:
            text = bracketed.group(1)
            continue
        stripped = _PREFIX.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
    key = " ".join(text.split()).casefold()
    return "" if key in _NO_SUBJECT else key


def is_reply_subject(subject: str) -> bool:
    """Whether a subject carries a reply/forward prefix ("RE: …", "[Fwd: …]", "Balas: …")."""
    text = TAG.sub(" ", subject)
    return bool(_PREFIX.match(text) or _BRACKETED.match(text))


def ticket_tag(subject: str, office_code: str) -> str | None:
    """The first ticket reference of this office in a subject, or None."""
    for match in TAG.finditer(subject):
        if match.group(2) == office_code:
            return match.group(1)
    return None


def outlook_hints(raw: bytes) -> OutlookHints:
    """Thread-Index's conversation part (the first 22 bytes, hex) and Thread-Topic, read from the
    header block; a Thread-Index that is not base64 or too short is ignored."""
    found = _HEAD_END.search(raw)
    head = raw[: found.start()] if found else raw
    if not _OUTLOOK.search(head):
        return NO_HINTS
    head = _UNFOLD.sub(b" ", head)
    conversation, data = None, b""
    index = _THREAD_INDEX.search(head)
    if index:
        try:
            data = base64.b64decode(index.group(1), validate=True)
        except (binascii.Error, ValueError):
            data = b""
        if len(data) >= CONVERSATION_BYTES:
            conversation = data[:CONVERSATION_BYTES].hex()
        else:
            data = b""
    topic = _THREAD_TOPIC.search(head)
    return OutlookHints(
        conversation, topic.group(1).decode("utf-8", "replace").strip() if topic else "", data
    )


# --- Thread-Index of our replies ([MS-OXOMSG] 2.2.1.3 PidTagConversationIndex) ------------------
# A reply's index is its parent's with one 5-byte response level appended: 1 bit delta code,
# 31 bits of the time since the header's time (FILETIME, 100 ns units; code 0: bits 48-18 of
# the difference, code 1 when it is 2^49 or more: bits 53-23), 8 random bits. The header
# (22 bytes: 0x01, the 40 high bits of a FILETIME, a 16-byte GUID) names the conversation.

_RESPONSE_LEVEL_BYTES = 5
_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)


def filetime(at: datetime) -> int:
    """A moment as a Windows FILETIME: 100-nanosecond intervals since 1601-01-01 UTC."""
    delta = at - _FILETIME_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def thread_index_child(parent: bytes, now: datetime, random_byte: int) -> bytes | None:
    """The Thread-Index of a reply to a mail whose Thread-Index is `parent` (decoded): the
    parent's header and response levels plus one level for `now`. None when `parent` has no
    whole header (a few stray bytes after the last whole level are dropped)."""
    if len(parent) < CONVERSATION_BYTES:
        return None
    levels = (len(parent) - CONVERSATION_BYTES) // _RESPONSE_LEVEL_BYTES
    base = parent[: CONVERSATION_BYTES + levels * _RESPONSE_LEVEL_BYTES]
    header_time = int.from_bytes(parent[1:6], "big") << 24
    delta = max(0, filetime(now) - header_time)  # a header from a clock ahead of ours: 0
    if delta < 1 << 49:
        code, bits = 0, (delta >> 18) & 0x7FFF_FFFF
    else:
        code, bits = 1, (delta >> 23) & 0x7FFF_FFFF
    return base + ((code << 31) | bits).to_bytes(4, "big") + bytes([random_byte & 0xFF])


def find_ticket(
    s: Session,
    office_code: str,
    mail: ParsedMail,
    now: datetime,
    window: timedelta,
    hints: OutlookHints = NO_HINTS,
    own_addresses: frozenset[str] = frozenset(),
) -> ThreadMatch | None:
    """The ticket this mail continues, or None for a new conversation."""
    ids = [*mail.in_reply_to, *reversed(mail.references)]
    ids = [i for i in dict.fromkeys(ids) if i != mail.message_id]
    hit = conversations.referenced_ticket(s, office_code, ids)
    if hit is not None:
        return ThreadMatch(hit.ticket, "references", trusted=hit.ours)
    ref = ticket_tag(mail.subject, office_code)
    if ref is not None:
        found = tickets.ticket_by_ref(s, ref, office=office_code)
        if found is not None:
            return ThreadMatch(found, "subject_tag")
    if hints.conversation:
        found = conversations.ticket_by_conversation_index(s, office_code, hints.conversation)
        if found is not None:
            return ThreadMatch(found, "thread_index")
    found = _same_sender_subject(s, office_code, mail, now - window, hints, own_addresses)
    return ThreadMatch(found, "same_sender_subject") if found is not None else None


def _same_sender_subject(
    s: Session, office: str, mail: ParsedMail, since: datetime, hints: OutlookHints, own: frozenset[str]
) -> TicketRef | None:
    """The one ticket of the sender this reply-prefixed subject continues (see the module doc)."""
    sender = acknowledgement_recipient(mail)
    if not sender or not is_reply_subject(mail.subject):
        return None
    keys = dict.fromkeys(k for k in (normalise_subject(mail.subject), normalise_subject(hints.topic)) if k)
    candidates: dict[int, TicketRef] = {}
    for key in keys:
        for ticket in conversations.tickets_by_conversation(s, office, sender, key, since):
            candidates.setdefault(ticket.id, ticket)
    others = people_on(mail, own) - {sender}
    fitting = [t for t in candidates.values() if others <= set(conversations.ticket_participants(s, t.id))]
    if len(fitting) <= 1:
        return fitting[0] if fitting else None
    return _quoted_ticket(s, mail.text, fitting)


def _quoted_ticket(s: Session, text: str, tickets: list[TicketRef]) -> TicketRef | None:
    """Of several tickets, the only one with a line of its mails (one no other of them has)
    quoted in `text`; None when the quotes do not single one out."""
    quoted = " ".join(_QUOTE_MARKS.sub("", text).split())
    lines: dict[str, set[int]] = {}
    for ticket_id, body in conversations.ticket_texts(s, [t.id for t in tickets]):
        for line in body.splitlines():
            line = " ".join(_QUOTE_MARKS.sub("", line).split())
            if len(line) >= _MIN_QUOTED_LINE:
                lines.setdefault(line, set()).add(ticket_id)
    hits = {next(iter(owners)) for line, owners in lines.items() if len(owners) == 1 and line in quoted}
    if len(hits) != 1:
        return None
    (chosen,) = hits
    return next(t for t in tickets if t.id == chosen)


def people_on(mail: ParsedMail, own_addresses: Iterable[str] = ()) -> set[str]:
    """The addresses in From, To and Cc of a mail, without our office addresses."""
    own = set(own_addresses)
    people = (mail.from_, *mail.to, *mail.cc)
    return {a.email for a in people if a is not None and a.email and a.email not in own}


def admit(match: ThreadMatch, sender: str, participants: Iterable[str], automatic: bool) -> Admission:
    """Whether a mail from `sender` may join the ticket found: through our own Message-ID
    (trusted) or as a participant; a stranger's mail opens a new linked ticket instead, or is
    only recorded when it is automatic mail. Whom the mail is addressed to does not count."""
    if match.trusted or sender in set(participants):
        return Admission.JOIN
    return Admission.RECORD if automatic else Admission.NEW_LINKED


def within_reopen_window(closed_at: datetime | None, now: datetime, reopen: timedelta) -> bool:
    """Whether a mail at `now` reopens a ticket closed at `closed_at` (else: a new linked ticket)."""
    return closed_at is not None and now - closed_at <= reopen


def outlook_reply_headers(
    hints: OutlookHints, subject: str, now: datetime, random_byte: int
) -> list[tuple[str, str]]:
    """Thread-Topic and Thread-Index for our reply to a mail with these hints, so that Outlook
    files it in the writer's conversation: [] when their mail had no Thread-Index (clients
    without one thread by In-Reply-To and References, which every reply of ours carries)."""
    child = thread_index_child(hints.index, now, random_byte) if hints.index else None
    if child is None:
        return []
    topic = hints.topic or " ".join(subject.split())
    return [("Thread-Topic", topic), ("Thread-Index", base64.b64encode(child).decode("ascii"))]
