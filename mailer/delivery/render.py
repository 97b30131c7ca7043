"""Outgoing mail from jinja2 templates: `templates/<lang>/<name>.{subject,txt,html}.j2`.

The MIME is assembled by hand (quoted-printable UTF-8 parts in multipart/alternative, RFC 2047
headers) because email.message.EmailMessage costs milliseconds per mail, which a backlog of
thousands of acknowledgements notices.
"""

from __future__ import annotations

import base64
import functools
import quopri
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from email.utils import format_datetime, formataddr
from importlib import resources
from pathlib import Path
from typing import Any

from babel.dates import format_date
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from mailer.decide import sla
from mailer.decide.rules import OWN_MAILER
from mailer.model import ParsedMail
from mailer.settings import WEEKDAYS, Office
from mailer.settings.offices import CHANNEL_LABELS


def _templates_folder() -> Path:
    """`mailer/templates` where a wheel installed them (pyproject.toml ships the top-level
    templates/ folder there), else the top-level `templates/` next to the `mailer` package (a
    checkout, or an editable install of one)."""
    package = Path(str(resources.files("mailer")))
    installed = package / "templates"
    return installed if installed.is_dir() else package.parent / "templates"


TEMPLATES = _templates_folder()
LANGUAGES = ("id", "en")
_DAY_NAMES = {
    "id": ("Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
_REPLY_PREFIX = re.compile(r"^\s*(re|aw|balas|bls)\s*:", re.IGNORECASE)
_MAX_REFERENCES = 20
# Header and body values that came from a mail are made one line and cut: a CR or LF in a
# display name or subject (an encoded word may decode to one) would otherwise start a header or
# a body of the sender's choosing in our mail; a 1 MB subject would make a 3 MB acknowledgement.
MAX_SUBJECT_CHARS = 500
MAX_NAME_CHARS = 100
_LINE_BREAKING = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
_WORD_BYTES = 45  # base64 of 45 bytes is 60 characters: "=?utf-8?b?" + 60 + "?=" is 72


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A rendered mail: its Message-ID (no brackets), envelope, subject and the bytes to send."""

    message_id: str
    envelope_from: str
    envelope_to: str
    subject: str
    text: str
    raw: bytes


def new_message_id(office: Office) -> str:
    """An unguessable Message-ID in the office's domain (128 random bits), without brackets."""
    return f"pst.{secrets.token_hex(16)}@{office.domain}"


def hours_text(office: Office, lang: str) -> str:
    """Opening hours as people write them: "Senin–Kamis 08.00–15.30, Jumat 08.00–16.00 WIB"."""
    names = _DAY_NAMES[lang]
    groups: list[tuple[int, int, tuple[str, str]]] = []
    for i, day in enumerate(WEEKDAYS):
        span = office.hours.by_day.get(day)
        if span is None:
            continue
        if groups and groups[-1][1] == i - 1 and groups[-1][2] == span:
            groups[-1] = (groups[-1][0], i, span)
        else:
            groups.append((i, i, span))
    parts = []
    for first, last, (start, end) in groups:
        days = names[first] if first == last else f"{names[first]}–{names[last]}"
        parts.append(f"{days} {start.replace(':', '.')}–{end.replace(':', '.')}")
    return ", ".join(parts) + f" {office.time_zone_label}"


def channels(office: Office, lang: str) -> list[tuple[str, str]]:
    """The office's complaint channels as (label, value), the label in `lang` (the value is the
    published fact, as published)."""
    if lang == "id":
        return list(office.complaint_channels)
    return [(CHANNEL_LABELS[label], value) for label, value in office.complaint_channels]


def promised_date_text(when: datetime, office: Office, lang: str) -> str:
    """ "Rabu, 25 November 2026" in the office's time zone."""
    return _long_date(when.astimezone(office.tz).date(), lang)


def deadline_text(due: datetime, office: Office, lang: str) -> str:
    """A deadline as the public reads it, day and time in the office's time zone:
    "Selasa, 8 Desember 2026 pukul 15.30 WIB" / "Tuesday, 8 December 2026 at 15:30 WIB"."""
    local = _local_minute(due, office)
    clock = f"pukul {local:%H.%M}" if lang == "id" else f"at {local:%H:%M}"
    return f"{_long_date(local.date(), lang)} {clock} {office.time_zone_label}"


@functools.lru_cache(maxsize=1024)
def _long_date(day: date, lang: str) -> str:
    return format_date(day, "EEEE, d MMMM y", locale=lang)  # babel: ~0.1 ms a call


def _local_minute(when: datetime, office: Office) -> datetime:
    """Wall-clock minute in the office (naive: aware datetimes of one instant in two zones
    would be equal keys of the cache below)."""
    return when.astimezone(office.tz).replace(second=0, microsecond=0, tzinfo=None)


def one_line(text: str, limit: int) -> str:
    """`text` from a mail made safe for a header or a line of ours: control characters and line
    breaks become spaces, runs of white space one space, and it is cut to `limit` characters
    (an ellipsis marks the cut)."""
    flat = " ".join(_LINE_BREAKING.sub(" ", text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def reply_subject(subject: str, lang: str) -> str:
    """Their subject with one reply prefix (none added twice); a default when they gave none."""
    subject = one_line(subject, MAX_SUBJECT_CHARS)
    if not subject:
        subject = "Permintaan konsultasi statistik" if lang == "id" else "Statistical consultation request"
    return subject if _REPLY_PREFIX.match(subject) else f"Re: {subject}"


class Renderer:
    """Renders the templates of one templates folder; create once, use from any thread."""

    def __init__(self, folder: Path = TEMPLATES) -> None:
        self.env = Environment(
            loader=FileSystemLoader(str(folder)),
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=False,  # no stat() of three template files per mail
        )

    def render(self, name: str, lang: str, context: dict[str, Any]) -> tuple[str, str, str]:
        """(subject, text, html) of template `name` in `lang`."""
        parts = (
            self.env.get_template(f"{lang}/{name}.{kind}.j2").render(context, language=lang)
            for kind in ("subject", "txt", "html")
        )
        subject, text, html = parts
        return " ".join(subject.split()), text, html

    def acknowledgement(
        self,
        office: Office,
        ticket_ref: str,
        mail: ParsedMail,
        to: str,
        lang: str,
        due: datetime,
        received: datetime,
        now: datetime,
        template: str = "ack",
        thread: Sequence[tuple[str, str]] = (),
        late: bool = False,
        forwarded: bool = False,
    ) -> Outgoing:
        """The acknowledgement of a new request (`template` "ack_complaint": of a complaint),
        threaded under the requester's mail (`thread`: Outlook's Thread-Topic and Thread-Index
        for it, threader.outlook_reply_headers). `late`: the mail is read after its deadline (the
        desk was down, a dead letter retried): `due` counts from now, and the mail says so.
        `forwarded`: a complaint that goes to the head of office (the mail says so only then)."""
        name = one_line(mail.from_.name, MAX_NAME_CHARS) if mail.from_ else ""
        context = {
            "late": late,
            "forwarded": forwarded,
            "channels": channels(office, lang),
            "read_text": promised_date_text(now, office, lang) if late else "",
            "office": office,
            "ticket_ref": ticket_ref,
            "requester_name": name,
            "subject": one_line(mail.subject, MAX_SUBJECT_CHARS) or "-",
            "reply_subject": reply_subject(mail.subject, lang),
            "due_text": deadline_text(due, office, lang),
            "promise": office.promise.worded(lang),  # the standard's words, "" for "N hari kerja …"
            # the clock started at the next opening: the mail says why day 1 is not today
            "outside_hours": not late and sla.clock_start(office, received) != received,
            "received_text": deadline_text(received, office, lang),
            "hours_text": hours_text(office, lang),
        }
        subject, text, html = self.render(template, lang, context)
        message_id = new_message_id(office)
        references = [*mail.references, *([mail.message_id] if mail.message_id else [])]
        headers = [
            ("From", formataddr((office.desk_name, office.email))),
            ("To", formataddr((name, to)) if mail.from_ and mail.from_.email == to else to),
            ("Subject", subject),
            ("Date", format_datetime(now.astimezone(office.tz))),
            ("Message-ID", f"<{message_id}>"),
            *([("In-Reply-To", f"<{mail.message_id}>")] if mail.message_id else []),
            *(
                [("References", " ".join(f"<{r}>" for r in references[-_MAX_REFERENCES:]))]
                if references
                else []
            ),
            *thread,
            ("Auto-Submitted", "auto-replied"),
            ("X-Auto-Response-Suppress", "All"),
            ("X-Loop", office.email),
            ("X-PST-Mailer", OWN_MAILER),
            ("X-PST-Ticket", ticket_ref),
            ("Content-Language", lang),
        ]
        raw = build_mime(headers, text, html)
        return Outgoing(message_id, office.email, to, subject, text, raw)

    def compose(
        self,
        office: Office,
        name: str,
        lang: str,
        context: dict[str, Any],
        to: str,
        ticket_ref: str | None,
        now: datetime,
        thread: Sequence[str] = (),
        extra: Sequence[tuple[str, str]] = (),
    ) -> Outgoing:
        """An automatic mail of the office from template `name` (closing notice, complaint
        notice, monthly report): threaded under `thread` (the conversation's Message-IDs, oldest
        first; the last is the one it answers), marked automatic like the acknowledgement."""
        subject, text, html = self.render(name, lang, {"office": office, "ticket_ref": ticket_ref, **context})
        message_id = new_message_id(office)
        refs = list(thread)[-_MAX_REFERENCES:]
        headers = [
            ("From", formataddr((office.desk_name, office.email))),
            ("To", to),
            ("Subject", subject),
            ("Date", format_datetime(now.astimezone(office.tz))),
            ("Message-ID", f"<{message_id}>"),
            *([("In-Reply-To", f"<{refs[-1]}>")] if refs else []),
            *([("References", " ".join(f"<{r}>" for r in refs))] if refs else []),
            *extra,
            ("Auto-Submitted", "auto-generated" if not refs else "auto-replied"),
            ("X-Auto-Response-Suppress", "All"),
            ("X-Loop", office.email),
            ("X-PST-Mailer", OWN_MAILER),
            *([("X-PST-Ticket", ticket_ref)] if ticket_ref else []),
            ("Content-Language", lang),
        ]
        return Outgoing(message_id, office.email, to, subject, text, build_mime(headers, text, html))


def _header(name: str, value: str) -> bytes:
    """One header line, RFC 2047-encoded when not ASCII, folded when longer than 78 columns.
    Whatever the caller passes, it stays one header: control characters and line breaks in the
    value become spaces (the one place every header of ours goes through)."""
    value = _LINE_BREAKING.sub(" ", value)
    if not value.isascii():
        return f"{name}: {_encoded_words(value)}\r\n".encode("ascii")
    if len(name) + len(value) < 77:
        return f"{name}: {value}\r\n".encode("ascii")
    lines, line = [], f"{name}:"
    for word in value.split(" "):  # fold at spaces (RFC 5322 §2.2.3); a lone long word stays whole
        if len(line) + 1 + len(word) > 78 and line != f"{name}:":
            lines.append(line)
            line = ""
        line += f" {word}"
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _encoded_words(value: str) -> str:
    """RFC 2047 base64 encoded-words of UTF-8, each under 76 characters, split between
    characters, on folded lines (the folding white space between them is not part of the
    text). email.header.Header does the same in about a millisecond."""
    words, chunk = [], b""
    for char in value:
        encoded = char.encode("utf-8", "surrogatepass")
        if len(chunk) + len(encoded) > _WORD_BYTES:
            words.append(chunk)
            chunk = b""
        chunk += encoded
    words.append(chunk)
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(w).decode('ascii')}?=" for w in words)


def _qp(text: str) -> bytes:
    body = text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    return quopri.encodestring(body).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def build_mime(headers: Sequence[tuple[str, str]], text: str, html: str) -> bytes:
    """A multipart/alternative mail (text, then HTML), CRLF line endings, ready for SMTP."""
    boundary = f"=_pst_{secrets.token_hex(12)}"
    out = [_header(name, value) for name, value in headers]
    out.append(b"MIME-Version: 1.0\r\n")
    out.append(f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode())
    for subtype, body in (("plain", text), ("html", html)):
        out.append(f"--{boundary}\r\n".encode())
        out.append(f"Content-Type: text/{subtype}; charset=utf-8\r\n".encode())
        out.append(b"Content-Transfer-Encoding: quoted-printable\r\n\r\n")
        out.append(_qp(body))
        out.append(b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out)
