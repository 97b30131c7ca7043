"""Which ticket an incoming mail belongs to, if any.

Matchers are tried in order; the first that finds a ticket wins:
1. In-Reply-To / References against every Message-ID stored for the office (the mails we
   received and the ones we sent, whose IDs are unguessable).
2. The ticket tag in the subject, e.g. "Re: Data inflasi [PST-3514-2026-00042]".
3. Last, the same sender with the same normalised subject, on a ticket active within a window
   (`threading.subject_window_days`): Outlook on the web and some phones send replies with no
   References at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from mailer.model import ParsedMail
from mailer.rules import acknowledgement_recipient
from storage import repo

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


@dataclass(frozen=True, slots=True)
class ThreadMatch:
    """The ticket found and how: "references" or "subject_tag"."""

    ticket: repo.TicketRef
    how: str


def normalise_subject(subject: str) -> str:
    """The subject a conversation keeps however clients prefix it: "RE: Balas: [EXTERNAL] Fwd:
    Data IPM [PST-3514-2026-00001]" → "data ipm". Ticket tags are dropped, case and spaces folded."""
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
    return " ".join(text.split()).casefold()


def ticket_tag(subject: str, office_code: str) -> str | None:
    """The first ticket reference of this office in a subject, or None."""
    for match in TAG.finditer(subject):
        if match.group(2) == office_code:
            return match.group(1)
    return None


def find_ticket(
    s: Session, office_code: str, mail: ParsedMail, now: datetime, window: timedelta
) -> ThreadMatch | None:
    """The ticket this mail continues, or None for a new conversation."""
    ids = [*mail.in_reply_to, *reversed(mail.references)]
    ids = [i for i in dict.fromkeys(ids) if i != mail.message_id]
    found = repo.ticket_by_message_ids(s, office_code, ids)
    if found is not None:
        return ThreadMatch(found, "references")
    ref = ticket_tag(mail.subject, office_code)
    if ref is not None:
        found = repo.ticket_by_ref(s, ref, office=office_code)
        if found is not None:
            return ThreadMatch(found, "subject_tag")
    sender, key = acknowledgement_recipient(mail), normalise_subject(mail.subject)
    if sender and key:
        found = repo.ticket_by_conversation(s, office_code, sender, key, now - window)
        if found is not None:
            return ThreadMatch(found, "same_sender_subject")
    return None
