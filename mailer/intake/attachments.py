"""Attachments as they are stored: a name safe to write to any disk, the size, the sha256 and
the bytes unless they are over `attachments.max_bytes`. Pure.

A name from a mail is anything its sender's client wrote: "../../etc/passwd",
"C:\\Users\\x\\scan.pdf", "invoice\u202efdp.exe" (a right-to-left override that shows as
"invoiceexe.pdf"), "CON.txt", 300 characters, or nothing at all. The safe name keeps what a
person would recognise and drops the rest; the name as written is kept beside it.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from collections.abc import Sequence

from mailer.model import Attachment
from storage.messages import NewAttachment

MAX_NAME_CHARS = 120
MAX_NAME_BYTES = 240  # UTF-8; most file systems allow 255
MAX_EXTENSION_CHARS = 16
_TYPES = mimetypes.MimeTypes()  # the stdlib's own table only: the same on every machine
_WINDOWS_FORBIDDEN = re.compile(r'[<>:"/\\|?*]')
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})  # controls, bidi, unassigned
_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul", "conin$", "conout$"}
    | {f"{port}{n}" for port in ("com", "lpt") for n in (*"123456789", "¹", "²", "³")}
)


def safe_filename(name: str, content_type: str = "application/octet-stream", position: int = 0) -> str:
    """A file name without directories, control or invisible characters, characters Windows
    forbids, leading or trailing dots and spaces, or a Windows device name (CON, LPT1, …),
    cut to MAX_NAME_CHARS keeping its extension; "attachment-N.ext" (N = position + 1, the
    extension from the content type) when nothing is left."""
    name = unicodedata.normalize("NFC", name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]  # no directories, Windows or Unix
    name = "".join(ch for ch in name if unicodedata.category(ch) not in _DROPPED_CATEGORIES)
    name = " ".join(_WINDOWS_FORBIDDEN.sub("_", name).split())
    name = name.strip(" .")
    if not name or not name.strip("_"):
        return f"attachment-{position + 1}{extension_for(content_type)}"
    if name.split(".", 1)[0].rstrip(" ").lower() in _WINDOWS_RESERVED:
        name = "_" + name
    return _shorten(name)


def _shorten(name: str) -> str:
    """The name cut to MAX_NAME_CHARS characters and MAX_NAME_BYTES bytes, extension kept."""
    if len(name) <= MAX_NAME_CHARS and len(name.encode("utf-8")) <= MAX_NAME_BYTES:
        return name
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension) > MAX_EXTENSION_CHARS:
        stem, extension = name, ""
    suffix = "." + extension if extension else ""
    room = MAX_NAME_CHARS - len(suffix)
    stem = stem[:room]
    while len((stem + suffix).encode("utf-8")) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return stem.rstrip(" .") + suffix


def extension_for(content_type: str) -> str:
    """ ".pdf" for application/pdf …; ".bin" when the type is unknown."""
    if content_type == "message/rfc822":
        return ".eml"
    return _TYPES.guess_extension(content_type, strict=False) or ".bin"


def unique_names(names: Sequence[str]) -> list[str]:
    """The names with repeats numbered: scan.jpg, scan.jpg → scan.jpg, scan (2).jpg
    (compared case-insensitively, as Windows and macOS do)."""
    seen: set[str] = set()
    out: list[str] = []
    for name in names:
        candidate, n = name, 1
        while candidate.lower() in seen:
            n += 1
            stem, dot, extension = name.rpartition(".")
            candidate = f"{stem} ({n}).{extension}" if dot and stem else f"{name} ({n})"
        seen.add(candidate.lower())
        out.append(candidate)
    return out


def attachment_rows(
    message_pk: int, attachments: Sequence[Attachment], max_bytes: int
) -> list[NewAttachment]:
    """The rows of storage.tables.AttachmentRow for a stored message's attachments: safe and
    unique names; the bytes, or none and the reason when over `max_bytes`."""
    names = unique_names([safe_filename(a.filename, a.content_type, i) for i, a in enumerate(attachments)])
    rows: list[NewAttachment] = []
    for position, (attachment, filename) in enumerate(zip(attachments, names, strict=True)):
        over = attachment.size > max_bytes
        rows.append(
            {
                "message_pk": message_pk,
                "position": position,
                "filename": filename,
                "original_filename": attachment.filename,
                "content_type": attachment.content_type[:255],
                "size": attachment.size,
                "sha256": attachment.sha256,
                "origin": attachment.origin,
                "content": None if over else attachment.content,
                "omitted": f"over attachments.max_bytes ({max_bytes} bytes)" if over else "",
            }
        )
    return rows
