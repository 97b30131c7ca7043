"""MIME for the parse step: walk a compat32 part tree, decoding transfer encodings and
charsets, collecting text, HTML, attachments and attached messages. Never raises.

The text is every text/plain part in order, plus the HTML parts that have no text/plain
alternative made readable. Inline images (referenced from the HTML by cid:, or inline in
multipart/related) are not attachments; an image marked `inline` that no HTML shows is one
(Apple Mail and iOS mark the photos a person attaches `inline`, with or without a name). A
winmail.dat (TNEF) is unpacked: its files are the attachments, its body the text when the mail
has no other. In a DSN the status fields are left out (only free text an MTA put there is
kept) and the returned headers (text/rfc822-headers) are handed back like an attached message,
without being listed as an attachment.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from dataclasses import dataclass, field
from email import errors, policy
from email.message import Message
from email.parser import BytesParser
from typing import NamedTuple

from mailer.intake import tnef
from mailer.intake.decode import b64decode, decode_text, decode_words, recover_8bit
from mailer.intake.html_text import html_to_text
from mailer.model import Attachment

MAX_DEPTH = 12
MAX_HTML = 500_000
MIME_HEADERS = frozenset({"content-type", "content-disposition", "content-transfer-encoding", "content-id"})
_STATUS_PARTS = frozenset(
    {"message/delivery-status", "message/global-delivery-status", "message/disposition-notification",
     "message/feedback-report"}
)  # fmt: skip
_KNOWN_CTE = frozenset(
    {"", "7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode", "uuencode", "x-uue", "uue"}
)
_HEADERS_PARTS = frozenset({"text/rfc822-headers", "message/global-headers"})
_PARSER = BytesParser(policy=policy.compat32)
_BODY_TYPES = ("text/plain", "text/html")
_CID_REF = re.compile(r"""cid:([^"'\s>)]+)""", re.IGNORECASE)
_PARAM = re.compile(r';[ \t]*([^\s=;"]+)[ \t]*=[ \t]*("[^"\\]*(?:\\.[^"\\]*)*"?|[^;]*)')
_QUOTED_PAIR = re.compile(r"\\(.)")
_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]{1,40})""", re.I)


class PartInfo(NamedTuple):
    """The MIME headers of one part, read in one pass (compat32's `get` is slow)."""

    ctype: str  # "type/subtype", lower-cased
    disposition: str  # "attachment", "inline" or ""
    cte: str  # Content-Transfer-Encoding token: "Base64;" → "base64"
    cte_loose: bool  # written so loosely that the stdlib will not decode it
    cid: str  # Content-ID without brackets
    filename: str  # decoded, "" when none
    charset: str | None


def mime_headers(part: Message) -> dict[str, str]:
    """{"content-type": "text/plain; charset=utf-8", …}: first value of each MIME header,
    unfolded, raw 8-bit bytes decoded."""
    found: dict[str, str] = {}
    for name, value in part.raw_items():
        key = name.lower() if name[:1] in "cC" else ""
        if key in MIME_HEADERS and key not in found:
            found[key] = recover_8bit(str(value).replace("\r", "").replace("\n", ""))[0]
    return found


def part_info(part: Message, found: dict[str, str] | None = None) -> PartInfo:
    """PartInfo of a part (from its `mime_headers` if already read); an invalid Content-Type
    reads as text/plain, a missing one as the default type (message/rfc822 in a digest)."""
    found = mime_headers(part) if found is None else found
    ctype_value = found.get("content-type", "")
    ctype = _token(ctype_value)
    if ctype.count("/") != 1:
        ctype = "text/plain" if "content-type" in found else part.get_default_type()
    if ctype.startswith("multipart/") and part.is_multipart():
        return PartInfo(ctype, "", "", False, "", "", None)
    disposition = found.get("content-disposition", "")
    type_params, disp_params = _params(ctype_value), _params(disposition)
    name = disp_params.get("filename") or type_params.get("name") or ""
    if "*" in ctype_value or "*" in disposition:  # maybe RFC 2231 parameters: name*=, name*0*=
        name = _rfc2231_filename(found) or name
    cte_value = found.get("content-transfer-encoding", "")
    cte = _token(cte_value)
    return PartInfo(
        ctype=ctype,
        disposition=_token(disposition),
        cte=cte,
        cte_loose=cte_value.lower() != cte,
        cid=found.get("content-id", "").strip().strip("<>").strip(),
        filename=decode_words(" ".join(name.split()))[0].strip() if name else "",
        charset=type_params.get("charset"),
    )


def _token(value: str) -> str:
    """First token of a structured header, lower-cased: "Base64;" → "base64"."""
    words = value.split(";", 1)[0].split(None, 1)
    return words[0].lower() if words else ""


def _params(value: str) -> dict[str, str]:
    """{lower-cased name: unquoted value} of "type; a=1; b=\"x y\"", the first of each name."""
    found: dict[str, str] = {}
    if "=" not in value:
        return found
    for match in _PARAM.finditer(value):
        key, raw = match.group(1, 2)
        raw = raw.strip()
        if raw[:1] == '"':
            raw = raw[1:-1] if raw.endswith('"') and len(raw) > 1 else raw[1:]
            raw = _QUOTED_PAIR.sub(r"\1", raw) if "\\" in raw else raw
        found.setdefault(key.lower(), raw)
    return found


def _rfc2231_filename(found: dict[str, str]) -> str:
    """Filename from RFC 2231 parameters (filename*=utf-8''…, filename*0*=…) via the stdlib."""
    scratch = Message()
    for key in ("content-type", "content-disposition"):
        if key in found:
            scratch[key] = found[key]
    try:
        return str(scratch.get_filename() or "")
    except (ValueError, LookupError, TypeError, IndexError, AttributeError):
        return ""


def payload_bytes(part: Message, info: PartInfo) -> tuple[bytes, bool]:
    """(decoded body of a leaf part, decoded cleanly): base64, quoted-printable and uuencode
    also when the Content-Transfer-Encoding is written loosely ("base64;")."""
    if info.cte == "base64":  # binascii directly: the stdlib's validating decoder is 5x slower
        payload = part.get_payload()
        if isinstance(payload, str) and payload.isascii():
            return b64decode(payload.encode("ascii"))
    try:
        data = part.get_payload(decode=True)  # raw bytes unless the stdlib knows the encoding
    except (ValueError, TypeError, LookupError, binascii.Error, IndexError):
        return b"", False
    if not isinstance(data, bytes):
        return b"", True
    if not info.cte_loose or info.cte not in ("base64", "quoted-printable"):
        return data, True
    return b64decode(data) if info.cte == "base64" else (binascii.a2b_qp(data), True)


def _defect_name(defect: object) -> str:
    """errors.StartBoundaryNotFoundDefect() → "start boundary not found"."""
    if type(defect) is errors.MessageDefect and str(defect):  # one of ours, with its words
        return str(defect)
    name = type(defect).__name__.removesuffix("Defect")
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).lower()


# -- walk -------------------------------------------------------------------------------------


@dataclass
class Body:
    """What a walk over one message's part tree found, in order of appearance."""

    # body texts in order: (text, True) for HTML without a text/plain alternative, to convert
    texts: list[tuple[str, bool]] = field(default_factory=list)
    htmls: list[str] = field(default_factory=list)
    # each attachment with the Content-ID of an image and whether it is inline in a related
    attachments: list[tuple[Attachment, str, bool]] = field(default_factory=list)
    # attached messages, with their attachment filename (None: returned headers, not listed)
    messages: list[tuple[Message, str | None]] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    tnef_texts: list[str] = field(default_factory=list)  # bodies of winmail.dat parts

    def text(self) -> str:
        """The body texts joined, HTML made readable; else a winmail.dat's body; else all the
        HTML."""
        pieces = [self._readable(t) if is_html else t for t, is_html in self.texts]
        text = "\n".join(t for t in pieces if t.strip())
        if not text.strip() and self.tnef_texts:
            text = "\n".join(self.tnef_texts)
        if not text.strip() and self.htmls:
            text = self._readable("\n".join(self.htmls))
        return text.replace("\r\n", "\n").replace("\r", "\n")

    def _readable(self, html: str) -> str:
        """html_to_text, of the first MAX_HTML characters only (html.parser is slow: ~1 s/MB)."""
        if len(html) > MAX_HTML:
            self.defects.append(f"html over {MAX_HTML} characters: text cut")
        return html_to_text(html[:MAX_HTML])

    def kept_attachments(self) -> list[Attachment]:
        """Attachments without the inline images of the HTML body."""
        refs: set[str] = set()
        if any(cid for _, cid, _ in self.attachments):
            refs = {ref.lower() for html in self.htmls for ref in _CID_REF.findall(html)}
        return [a for a, cid, inline in self.attachments if not (inline or (cid and cid.lower() in refs))]


def walk(part: Message, body: Body, depth: int, parent: str = "", info: PartInfo | None = None) -> None:
    """Collect into `body` what `part` and its children hold; `parent` is "" at a root and
    ends in "+" below a multipart/alternative that has a text/plain part."""
    info = part_info(part) if info is None else info
    if depth > MAX_DEPTH:
        body.defects.append("parts nested too deep")
    elif info.ctype.startswith("multipart/") and part.is_multipart():  # else: no boundary
        children = [(c, part_info(c)) for c in part.get_payload() if isinstance(c, Message)]
        covered = parent.endswith("+") or (
            info.ctype == "multipart/alternative" and any(i.ctype == "text/plain" for _, i in children)
        )
        for child, child_info in children:
            walk(child, body, depth + 1, info.ctype + ("+" if covered else ""), child_info)
    elif info.ctype in _STATUS_PARTS:
        body.texts.append((_status_text(part), False))  # usually ""
    elif info.ctype.startswith("message/") or info.ctype in _HEADERS_PARTS:
        inner = attached_message(part, info, body.defects)
        if inner is not None:
            listed = None if info.ctype in _HEADERS_PARTS else info.filename or "message.eml"
            body.messages.append((inner, listed))
    else:
        _leaf(part, info, body, parent)
    body.defects.extend(_defect_name(d) for d in part.defects)


def _leaf(part: Message, info: PartInfo, body: Body, parent: str) -> None:
    ctype = "text/plain" if info.ctype.startswith("multipart/") else info.ctype  # no boundary
    data, clean = payload_bytes(part, info)
    if not clean:
        body.defects.append(f"bad {info.cte}: {ctype}")
    if info.cte not in _KNOWN_CTE:
        body.defects.append(f"unknown content-transfer-encoding {info.cte!r}: {ctype}")
    container = parent.rstrip("+")
    if ctype in _BODY_TYPES and info.disposition != "attachment" and not (info.filename and parent):
        charset = info.charset
        if charset is None and ctype == "text/html":  # <meta charset=…> when the header has none
            declared = _META_CHARSET.search(data, 0, 4096)
            charset = declared.group(1).decode("ascii") if declared else None
        text, ok = decode_text(data, charset)
        if not ok:
            body.defects.append(f"bad charset {charset!r}: {ctype}")
        if ctype == "text/html":
            body.htmls.append(text)
        if ctype == "text/plain" or not parent.endswith("+"):  # HTML with a plain alternative: skip
            body.texts.append((text, ctype == "text/html"))
    elif not (info.filename or info.disposition == "attachment") and container == "multipart/alternative":
        return  # another rendering of the body (text/enriched, text/watch-html)
    elif tnef.is_tnef(ctype, info.filename) and _unpacked(data, body):
        return
    else:
        image = ctype.startswith("image/")
        inline = image and container == "multipart/related" and info.disposition != "attachment"
        attachment = Attachment(info.filename, ctype, len(data), hashlib.sha256(data).hexdigest(), data)
        body.attachments.append((attachment, info.cid if image else "", inline))


def _unpacked(data: bytes, body: Body) -> bool:
    """A winmail.dat's files and body into `body`; False (and a defect) if it cannot be read."""
    found = tnef.unpack(data)
    if found.problem is not None:
        body.defects.append(f"winmail.dat not unpacked: {found.problem}")
        return False
    for f in found.files:
        digest = hashlib.sha256(f.content).hexdigest()
        attachment = Attachment(f.filename, f.content_type, len(f.content), digest, f.content, "winmail.dat")
        body.attachments.append((attachment, "", False))
    if found.text:
        body.tnef_texts.append(found.text)
    return True


def _status_text(part: Message) -> str:
    """Free text inside a delivery-status part (some MTAs put their explanation there); the
    status fields themselves are machine-readable and left out."""
    blocks = part.get_payload()
    texts = (
        [b.get_payload() if isinstance(b, Message) else b for b in blocks]
        if isinstance(blocks, list)
        else [blocks]
    )
    return "\n\n".join(recover_8bit(t)[0].strip() for t in texts if isinstance(t, str) and t.strip())


def attached_message(part: Message, info: PartInfo, defects: list[str]) -> Message | None:
    """The message inside a message/rfc822 part (also one wrongly base64-encoded), or the
    returned headers of a text/rfc822-headers part as a message without body."""
    if info.ctype in _HEADERS_PARTS:
        return _PARSER.parsebytes(payload_bytes(part, info)[0], headersonly=True)
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    if not isinstance(inner, Message):
        return None
    if info.cte != "base64" or inner.keys():
        return inner
    data, clean = b64decode(str(inner.get_payload()).encode("utf-8", "surrogateescape"))
    if not clean:
        return inner
    defects.append("base64-encoded message/rfc822")
    return _PARSER.parsebytes(data)
