"""TNEF (`winmail.dat`, application/ms-tnef): what Outlook sends instead of ordinary MIME when
it thinks the recipient runs Exchange. Unpacked with `tnefparse` into the files it carries and
its body: plain text if there is one, else the HTML body, else the compressed RTF body
(decompressed by `compressed_rtf`, made text by `striprtf`).

Pure; never raises: a winmail.dat that cannot be read comes back with the reason, and the
caller keeps it as an ordinary attachment.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass, field
from typing import Any

from mailer.intake.decode import decode_text
from mailer.intake.html_text import html_to_text

_TYPES = mimetypes.MimeTypes()  # the stdlib's own table only: the same on every machine
_OFFICE = "application/vnd.openxmlformats-officedocument."
for _extension, _type in ((".docx", "wordprocessingml.document"), (".xlsx", "spreadsheetml.sheet"),
                          (".pptx", "presentationml.presentation")):  # fmt: skip
    _TYPES.add_type(_OFFICE + _type, _extension)


@dataclass(frozen=True, slots=True)
class TnefFile:
    """One file carried in a winmail.dat."""

    filename: str
    content_type: str
    content: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class TnefContent:
    """What a winmail.dat holds: its body as text ("" if none) and its files; `problem` says
    why it could not be read (then the rest is empty)."""

    text: str = ""
    files: tuple[TnefFile, ...] = ()
    problem: str | None = None


def is_tnef(content_type: str, filename: str) -> bool:
    """Whether a MIME part is TNEF: by its type, or by Outlook's name for it."""
    return content_type in ("application/ms-tnef", "application/vnd.ms-tnef") or filename.lower() in (
        "winmail.dat",
        "win.dat",
    )


def unpack(data: bytes) -> TnefContent:
    """The body text and files of TNEF bytes; a TnefContent with `problem` set if unreadable."""
    from tnefparse import TNEF

    try:
        tnef = TNEF(data, do_checksum=False)
        files = tuple(_file(attachment, tnef.codepage) for attachment in tnef.attachments)
        return TnefContent(text=_body(tnef), files=tuple(f for f in files if f.content or f.filename))
    except Exception as exc:  # a third-party decoder on untrusted bytes: anything can fail
        return TnefContent(problem=f"{type(exc).__name__}: {exc}")


def _file(attachment: Any, codepage: str | None) -> TnefFile:
    """A TnefFile of a tnefparse attachment: its long file name when it has one."""
    try:
        name = attachment.long_filename()
    except UnicodeDecodeError:  # tnefparse decodes the short name as UTF-8; Outlook wrote its codepage
        name = attachment._name  # the raw name: tnefparse has no public accessor for it
    name = _text(name, codepage).strip()
    content = attachment.data if isinstance(attachment.data, bytes) else b""
    content_type = _TYPES.guess_type(name, strict=False)[0] or "application/octet-stream"
    return TnefFile(name, content_type, content)


def _body(tnef: Any) -> str:
    """The message body: plain text, else HTML made text, else RTF made text; "" if none."""
    if tnef.body:
        return _text(tnef.body, tnef.codepage).strip()
    if tnef.htmlbody:
        return html_to_text(_text(tnef.htmlbody, tnef.codepage)).strip()
    rtf = tnef.rtfbody
    if not rtf:
        return ""
    from striprtf.striprtf import rtf_to_text

    source = rtf.decode("cp1252", "replace") if isinstance(rtf, bytes) else str(rtf)
    if not source.lstrip().startswith("{\\rtf"):  # still compressed: compressed_rtf missing
        return ""
    return str(rtf_to_text(source, errors="replace")).strip()  # type: ignore[no-untyped-call]


def _text(value: Any, codepage: str | None) -> str:
    """A tnefparse value (str, or bytes in the message's codepage) as text."""
    if isinstance(value, bytes):
        return decode_text(value.rstrip(b"\x00"), codepage or "cp1252")[0]
    return str(value).rstrip("\x00").replace("\x00", "\ufffd")
