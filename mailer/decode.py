"""Decoding for the parse step: charsets, RFC 2047 encoded words, raw 8-bit header bytes,
tolerant base64. Pure functions that never raise; each says whether the input was clean.

Charsets are read the way mislabelled mail needs: iso-8859-1 labels as windows-1252 (what such
mail really is), ascii labels as UTF-8 when the bytes are not ASCII, supersets for gb2312,
euc-kr and shift_jis, and bytes that do not fit the declared charset as UTF-8, then
windows-1252.
"""

from __future__ import annotations

import binascii
import codecs
import re
from functools import lru_cache

_EWORD = re.compile(r"=\?([^?\s]*)\?([qQbB])\?(.*?)\?=")
_NOT_B64 = re.compile(rb"[^A-Za-z0-9+/]")
_SUPERSETS = {"iso8859-1": "cp1252", "gb2312": "gb18030", "gbk": "gb18030", "euc_kr": "cp949",
              "shift_jis": "cp932"}  # fmt: skip


@lru_cache(maxsize=256)
def _codec(label: str | None) -> str | None:
    """Python text codec for a MIME charset label ("iso-8859-1" → "cp1252"); None if unknown."""
    try:
        name = codecs.lookup((label or "").strip().strip("\"'").lower()).name
        b"a".decode(name, "replace")  # LookupError for bytes-to-bytes codecs such as base64
    except (LookupError, ValueError, TypeError):
        return None
    return _SUPERSETS.get(name, name)


def decode_text(data: bytes, charset: str | None) -> tuple[str, bool]:
    """(text, True) in the declared charset, or (best guess, False) when it did not fit.

    With no charset at all, valid UTF-8 counts as fitting. Never raises.
    """
    codec = _codec(charset)
    if codec == "ascii":
        if data.isascii():
            return data.decode("ascii"), True
        codec = None
    if codec is not None:
        try:
            return data.decode(codec), True
        except (UnicodeError, ValueError, TypeError, LookupError):
            pass
    try:
        return data.decode("utf-8"), charset is None
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace"), False


def recover_8bit(value: str) -> tuple[str, bool]:
    """A compat32 header value with raw 8-bit bytes (surrogate-escaped) → (text, was UTF-8)."""
    if value.isascii():
        return value, True
    return decode_text(value.encode("utf-8", "surrogateescape"), None)


def decode_words(value: str) -> tuple[str, bool]:
    """RFC 2047 encoded words decoded → (text, all decodable); adjacent words in one charset
    are joined as bytes first (encoders split multi-byte characters across words)."""
    if "=?" not in value:
        return value, True
    chunks: list[str | tuple[bytes, str]] = []
    pos, clean = 0, True
    for word in _EWORD.finditer(value):
        gap = value[pos : word.start()]
        if gap and not (gap.isspace() and chunks and isinstance(chunks[-1], tuple)):
            chunks.append(gap)
        charset = word.group(1).split("*", 1)[0].lower()
        data = word.group(3).encode("utf-8", "surrogateescape")
        if word.group(2) in "qQ":
            data = binascii.a2b_qp(data, header=True)
        else:
            data, ok = b64decode(data)
            clean = clean and ok
        last = chunks[-1] if chunks else None
        if isinstance(last, tuple) and last[1] == charset:
            chunks[-1] = (last[0] + data, charset)
        else:
            chunks.append((data, charset))
        pos = word.end()
    chunks.append(value[pos:])
    out: list[str] = []
    for chunk in chunks:
        text, ok = (chunk, True) if isinstance(chunk, str) else decode_text(*chunk)
        out.append(text)
        clean = clean and ok
    return "".join(out), clean


def b64decode(data: bytes) -> tuple[bytes, bool]:
    """Base64 that tolerates junk, missing padding and a truncated last group → (bytes, clean)."""
    try:
        return binascii.a2b_base64(data), True
    except binascii.Error:
        clean = _NOT_B64.sub(b"", data)
        clean = clean[: len(clean) - 1] if len(clean) % 4 == 1 else clean
        try:
            return binascii.a2b_base64(clean + b"=" * (-len(clean) % 4)), False
        except binascii.Error:
            return b"", False
