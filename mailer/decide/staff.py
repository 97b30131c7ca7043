"""Who wrote a mail — a member of the public, or the office's staff answering them — and what an
officer asks of a ticket. Pure: no database, no network.

Staff mail is recognised by where it was found and who sent it, never by what it says:
- in the office account's Sent folder (only the account itself can put mail there);
- from the office's own address (its complaint addresses too: an officer answering from the
  complaint mailbox ipds3571@ with the office in Cc), or from a staff address of the settings
  (`staff.addresses`, `staff.domains`), arriving in the office mailbox because the office is
  in To/Cc.
When `staff.require_authentication` is on, a From header is not taken on its word: the mail
counts as staff only if the office's receiving server (`staff.authserv_ids`) passed it in its
Authentication-Results header (DMARC pass, or DKIM/SPF pass aligned with the sender's domain).

Officers steer a ticket with a command word (`#selesai`, `#tunggu`, …) at the start of the
subject or of the first line they write, in a mail sent only to office addresses, so that the
requester never sees it (README, "Untuk petugas PST").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from enum import StrEnum

import authres

from mailer.decide.trim import trim
from mailer.model import ParsedMail, Role
from mailer.settings import Office, StaffSettings
from storage.vocabulary import Resolution

_FEATURES = authres.all_features()


@dataclass(frozen=True, slots=True)
class Officer:
    """A staff author: the address, and how we know ("sent_folder", "office_account",
    "staff_address"; with ", authenticated" when Authentication-Results vouched for it)."""

    email: str
    how: str

    def formatted(self) -> str:
        return f"{self.email} ({self.how})"


class Action(StrEnum):
    """What a command word does to a ticket (lifecycle.staff_command)."""

    CLOSE = "close"
    WAIT = "wait"
    SETTLE = "settle"  # answered without a reply, with how it was settled
    NOTE = "note"
    REOPEN = "reopen"


@dataclass(frozen=True, slots=True)
class Command:
    """What an officer asked: the word as written, and what it does to the ticket."""

    word: str
    action: Action
    resolution: Resolution  # Resolution.NONE: no change


# Command words, Indonesian first; each also in English. A command starts with "#".
COMMANDS: dict[str, tuple[Action, Resolution]] = {
    "selesai": (Action.CLOSE, Resolution.CLOSED),
    "tutup": (Action.CLOSE, Resolution.CLOSED),
    "close": (Action.CLOSE, Resolution.CLOSED),
    "tunggu": (Action.WAIT, Resolution.NONE),
    "menunggu": (Action.WAIT, Resolution.NONE),
    "wait": (Action.WAIT, Resolution.NONE),
    "terjawab": (Action.SETTLE, Resolution.ANSWERED),
    "answered": (Action.SETTLE, Resolution.ANSWERED),
    "terimakasih": (Action.SETTLE, Resolution.THANKS),
    "thanks": (Action.SETTLE, Resolution.THANKS),
    "spam": (Action.SETTLE, Resolution.SPAM),
    "duplikat": (Action.SETTLE, Resolution.DUPLICATE),
    "duplicate": (Action.SETTLE, Resolution.DUPLICATE),
    "catatan": (Action.NOTE, Resolution.NONE),
    "note": (Action.NOTE, Resolution.NONE),
    "buka": (Action.REOPEN, Resolution.NONE),
    "reopen": (Action.REOPEN, Resolution.NONE),
}
_COMMAND = re.compile(r"(?:^|\s)#([a-z]+)\b", re.IGNORECASE)
_TICKET_REF = re.compile(r"\bPST-\d{4}-\d{4}-\d{5,}\b")


def identify(
    mail: ParsedMail, raw: bytes, office: Office, role: Role, own_addresses: frozenset[str]
) -> tuple[Officer | None, str]:
    """The officer who wrote this mail, or None; with a reason when a staff-looking mail was not
    taken as staff (logged by the caller)."""
    sender = mail.from_.email if mail.from_ else ""
    if role is Role.SENT:
        return Officer(sender or office.email, "sent_folder"), ""
    if sender == office.email or sender in office.complaint_addresses:  # its complaint mailbox too
        how = "office_account"
    elif sender in own_addresses:
        return None, ""  # another office of this desk: not this office's staff
    elif sender and office.staff.knows(sender):
        how = "staff_address"
    else:
        return None, ""
    policy = office.staff
    if not policy.require_authentication:
        return Officer(sender, how), ""
    passed, why = authenticated(raw, sender, policy)
    if not passed:
        return None, f"{sender} looks like staff but is not authenticated: {why}"
    return Officer(sender, f"{how}, authenticated ({why})"), ""


def authenticated(raw: bytes, sender: str, policy: StaffSettings) -> tuple[bool, str]:
    """Whether the office's own receiving server passed this mail for the sender's domain.

    Only the topmost Authentication-Results header written by one of `policy.authserv_ids`
    counts (RFC 8601 §5: the receiving server adds its own above the others and removes forged
    ones bearing its name). Passing means DMARC pass for the From domain, or DKIM pass with a
    signing domain aligned with it, or SPF pass with an aligned envelope sender."""
    domain = sender.rpartition("@")[2]
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw).get_all("Authentication-Results") or []
    for value in headers:
        text = re.sub(r"\r?\n[ \t]+", " ", str(value)).strip()
        try:
            header = _FEATURES.parse_value(text)
        except (authres.AuthResError, ValueError, IndexError) as exc:
            return False, f"unreadable Authentication-Results: {exc}"
        if str(header.authserv_id).lower() not in policy.authserv_ids:
            continue
        verdicts = []
        for result in header.results:
            method, outcome = str(result.method).lower(), str(result.result).lower()
            verdicts.append(f"{method}={outcome}")
            if outcome != "pass":
                continue
            if method == "dmarc" and aligned(_domain_of(getattr(result, "header_from", "")), domain):
                return True, "dmarc=pass"
            if method == "dkim" and aligned(_domain_of(getattr(result, "header_d", "")), domain):
                return True, "dkim=pass, aligned"
            if method == "spf" and aligned(_domain_of(getattr(result, "smtp_mailfrom", "")), domain):
                return True, "spf=pass, aligned"
        return False, f"{header.authserv_id} says {', '.join(verdicts) or 'nothing'} for {domain}"
    return False, "no Authentication-Results from " + ", ".join(policy.authserv_ids)


def _domain_of(value: object) -> str:
    return str(value or "").strip().lower().rpartition("@")[2]


def aligned(other: str, domain: str) -> bool:
    """Relaxed DMARC alignment, approximated: one domain is the other or a subdomain of it."""
    if not other or not domain:
        return False
    return other == domain or other.endswith("." + domain) or domain.endswith("." + other)


def command(mail: ParsedMail, own_addresses: frozenset[str]) -> tuple[Command | None, str]:
    """The officer's command in this mail, if any; with a reason when a command word is ignored
    because the mail also went to someone outside the office (they would have seen it)."""
    visible = trim(mail.text)[0]
    first_line = next((line for line in visible.splitlines() if line.strip()), "")
    found = None
    for place in (mail.subject, first_line):
        match = _COMMAND.search(place)
        if match and match.group(1).lower() in COMMANDS:
            word = match.group(1).lower()
            found = Command(word, *COMMANDS[word])
            break
    if found is None:
        return None, ""
    outside = [a.email for a in (*mail.to, *mail.cc) if a.email not in own_addresses]
    if outside:
        return None, f"#{found.word} ignored: the mail also went to {', '.join(outside)}"
    return found, ""


class Refused(StrEnum):
    """Why an officer's command was not carried out; the officer is told (pipeline/refusal.py)."""

    UNVERIFIED = "unverified"  # a staff-looking sender the office's server did not vouch for
    SEEN_OUTSIDE = "seen_outside"  # the mail also went to people outside the office
    UNKNOWN = "unknown"  # a #word where a command goes that is no command
    NO_TICKET = "no_ticket"  # nothing in the mail leads to a ticket of the office


@dataclass(frozen=True, slots=True)
class RefusedCommand:
    """A command word not carried out, why, and the detail the officer needs (the outside
    addresses; the reference that matched nothing)."""

    word: str
    why: Refused
    detail: str = ""


def refused_command(mail: ParsedMail, own_addresses: frozenset[str]) -> RefusedCommand | None:
    """For an officer's mail in which `command` found nothing to obey: a command word the mail
    also showed to outsiders, or a #word in a command's place that is no command (in a mail
    only to the office: in an answer to the public a hashtag is just a hashtag). None otherwise."""
    word = _command_word(mail)
    if word is None:
        return None
    outside = [a.email for a in (*mail.to, *mail.cc) if a.email not in own_addresses]
    if word in COMMANDS:
        return RefusedCommand(word, Refused.SEEN_OUTSIDE, ", ".join(outside)) if outside else None
    return None if outside else RefusedCommand(word, Refused.UNKNOWN)


def _command_word(mail: ParsedMail) -> str | None:
    """The #word of the subject, else of the first line written (lower-cased), or None."""
    visible = trim(mail.text)[0]
    first_line = next((line for line in visible.splitlines() if line.strip()), "")
    for place in (mail.subject, first_line):
        match = _COMMAND.search(place)
        if match:
            return match.group(1).lower()
    return None


def command_words() -> list[str]:
    """The command words as an officer types them, Indonesian first: "#selesai", "#tutup", …"""
    return [f"#{word}" for word in COMMANDS]


def ticket_refs(mail: ParsedMail) -> list[str]:
    """Ticket references written in the subject or the body (officers paste them)."""
    return list(dict.fromkeys(_TICKET_REF.findall(f"{mail.subject}\n{mail.text[:5000]}")))


def goes_outside(mail: ParsedMail, own_addresses: frozenset[str]) -> bool:
    """Whether anyone outside the desk's office addresses is in To/Cc."""
    return any(a.email not in own_addresses for a in (*mail.to, *mail.cc))


# --- the requester's side -------------------------------------------------------------------

_THANKS = re.compile(
    r"\b(terima\s*kasih|terimakasih|trima\s*kasih|makasih|makasi|thanks?|thank\s+you|thx|tq|tks|"
    r"matur\s+nuwun|hatur\s+nuhun|nuhun)\b",
    re.IGNORECASE,
)
# Words that make a short mail more than a thank-you: a question, a new request, a problem.
_MORE = re.compile(
    r"\?|\b(mohon|minta|tolong|bisa|bisakah|apakah|bagaimana|kapan|dimana|di\s*mana|kenapa|mengapa|"
    r"belum|tidak|tapi|tetapi|namun|data|tabel|file|lampiran|kirim|request|please|could|can|"
    r"would|when|where|why|how|but|not|missing|again|lagi)\b",
    re.IGNORECASE,
)
_MAX_THANKS_WORDS = 25


def is_thanks(text: str) -> bool:
    """Whether what a requester wrote (quoted history trimmed) is a pure thank-you, e.g.
    "Baik, terima kasih banyak Pak 🙏": it asks nothing, so it must not restart the clock."""
    visible = trim(text)[0]
    words = visible.split()
    if not words or len(words) > _MAX_THANKS_WORDS:
        return False
    return bool(_THANKS.search(visible)) and not _MORE.search(visible)
