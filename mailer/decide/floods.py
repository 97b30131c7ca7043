"""Pure decisions against floods and reflection (issue 13): where an acknowledgement may go,
and whether one more automatic mail caused by an incoming mail stays within the hourly limits.
No I/O: tested with tables of cases (tests/test_floods.py).

Reflection. An acknowledgement goes to the author (From). A Reply-To is followed only when it
is on the same domain as From (compared case-insensitively, IDNA-normalised, a subdomain is
another domain): someone writing from `budi@kantor.example` may ask for the answer at
`budi.pribadi@kantor.example`, but a mail from `x@evil.example` cannot make the desk write to
`victim@other.example`. The first Reply-To on From's domain wins; the others are ignored (and
logged by the caller). No From: no acknowledgement at all (nothing to compare a Reply-To with).
A free-mail domain stays a risk for its own users (x@gmail.com naming y@gmail.com): the limits
below count the author too, so one author gets at most a few acknowledgements an hour whatever
Reply-To they name.

Floods. One more automatic mail is refused when, in the hour before it, the office already
queued the limit of such mails to the same recipient, caused by the same author (From) or the
same envelope sender (Return-Path), or in all for the office. An unknown author or envelope
sender ("" or None) is not counted as one sender.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from mailer.model import Address

_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
SENDER_LABEL_CHARS = 80


def domain_of(address: str) -> str:
    """The domain of an address, lower-cased and IDNA-encoded ("" when there is none):
    `Budi@Bücher.Example` → `xn--bcher-kva.example`."""
    _, at, domain = address.strip().rpartition("@")
    domain = domain.strip().rstrip(".").lower()
    if not at or not domain:
        return ""
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain  # not a valid IDN: compared as written (lower-cased)


def reply_to_choice(from_: Address | None, reply_to: Sequence[Address]) -> tuple[str | None, tuple[str, ...]]:
    """(where an acknowledgement goes, the Reply-To addresses ignored): the first Reply-To on
    From's domain, else From; (None, all of them) when there is no From address."""
    author = from_.email if from_ is not None and from_.email else ""
    home = domain_of(author)
    if not home:
        return None, tuple(a.email for a in reply_to if a.email)
    chosen = next((a.email for a in reply_to if a.email and domain_of(a.email) == home), None)
    ignored = tuple(a.email for a in reply_to if a.email and a.email != chosen)
    return chosen or author, ignored


@dataclass(frozen=True)
class Limits:
    """At most this many mails of one kind an hour: per recipient, per author, per envelope
    sender (the three "per sender"), and for the whole office."""

    per_sender: int
    per_office: int


@dataclass(frozen=True)
class Counts:
    """Mails of one kind the office queued in the last hour: to the recipient, caused by the
    author, caused by the envelope sender (None: that one is unknown, not counted), in all."""

    to_recipient: int
    by_author: int | None
    by_envelope_sender: int | None
    in_office: int


def over_limit(
    counts: Counts, limits: Limits, to: str, author: str, envelope_sender: str, kind: str = "mail"
) -> str:
    """Why one more mail of `kind` would pass a limit (the first one reached, recipient first),
    "" when it may go. The reason names the address and the figures, for the log and the ticket."""
    per = limits.per_sender
    checks = (
        (counts.to_recipient, per, f"to {to}"),
        (counts.by_author, per, f"caused by author {author}"),
        (counts.by_envelope_sender, per, f"caused by envelope sender {envelope_sender}"),
        (counts.in_office, limits.per_office, "for the whole office"),
    )
    for found, limit, what in checks:
        if found is not None and found >= limit:
            return f"limit reached: {found} {kind} {what} in the last hour (at most {limit})"
    return ""


def sender_label(address: str, limit: int = SENDER_LABEL_CHARS) -> str:
    """An address from a mail made safe for one line of a digest: control, format and bidi
    characters dropped, whitespace collapsed, at most `limit` characters ("-" when empty).
    HTML escaping is the template's (autoescape)."""
    text = unicodedata.normalize("NFC", _UNSAFE.sub("", address))
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text or "-"
