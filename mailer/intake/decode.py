"""Decoding for the parse step: charsets, RFC 2047 encoded words, raw 8-bit header bytes,
tolerant base64. Pure functions that never raise; each says whether the input was clean.

Charsets are read the way mislabelled mail needs:
- iso-8859-1 labels as windows-1252 (what such mail really is); windows-1252's five undefined
  bytes as their latin-1 characters rather than U+FFFD, so nothing is lost;
- a single-byte label (iso-8859-x, windows-125x, koi8-r, …) on bytes that are valid UTF-8 with
  non-ASCII characters as UTF-8 (a client that wrote UTF-8 and labelled it latin-1: real
  latin-1 text is almost never valid UTF-8);
- ascii labels as UTF-8 when the bytes are not ASCII;
- UTF-8 with a few invalid bytes (a latin-1 "é" pasted into UTF-8 text) as UTF-8, each invalid
  byte as windows-1252, instead of the whole text as windows-1252;
- unknown labels through a table of the names clients really send (ks_c_5601-1987,
  windows-874, x-mac-roman, iso-8859-8-i, windows-31j, cp-1252, …), else guessed like a
  missing label (UTF-8, else windows-1252 byte by byte); supersets for gb2312, euc-kr, shift_jis;
- codecs that are not charsets (unicode_escape, idna, punycode, base64, …) are never used.
"""

from __future__ import annotations

import binascii
import codecs
import re
from functools import lru_cache

_EWORD = re.compile(r"=\?([^?\s]*)\?([qQbB])\?(.*?)\?=")
_NOT_B64 = re.compile(rb"[^A-Za-z0-9+/]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # UTF-7 can encode them; no database stores them
_SUPERSETS = {"iso8859-1": "cp1252", "gb2312": "gb18030", "gbk": "gb18030", "euc_kr": "cp949",
              "shift_jis": "cp932"}  # fmt: skip
_ALIASES = {
    "windows-874": "cp874", "x-mac-roman": "mac-roman", "x-mac-cyrillic": "mac-cyrillic",
    "iso-8859-8-i": "iso8859-8", "iso-8859-6-i": "iso8859-6", "iso-8859-8-e": "iso8859-8",
    "iso-8859-6-e": "iso8859-6", "windows-31j": "cp932", "x-sjis": "cp932", "sjis": "cp932",
    "x-gbk": "gb18030", "gb_2312-80": "gb18030", "x-euc-jp": "euc_jp", "x-euc-tw": "big5",
    "cp-1252": "cp1252", "win-1252": "cp1252", "x-cp1252": "cp1252", "ansi": "cp1252",
    "x-ansi": "cp1252", "latin-1": "cp1252", "iso-latin-1": "cp1252", "x-user-defined": "cp1252",
    "unicode-1-1-utf-8": "utf-8", "x-unicode20utf8": "utf-8", "utf-8-sig": "utf-8",
}  # fmt: skip
_NOT_CHARSETS = frozenset(
    {"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined", "charmap"}
)
# windows-1252 by byte, its five undefined bytes (0x81 0x8d 0x8f 0x90 0x9d) as latin-1
_CP1252 = tuple(bytes([b]).decode("cp1252", "ignore") or chr(b) for b in range(256))


def _bytewise_cp1252(error: UnicodeError) -> tuple[str, int]:
    """Decoding error handler: the bytes that did not decode, each as windows-1252."""
    assert isinstance(error, UnicodeDecodeError)
    return "".join(_CP1252[b] for b in error.object[error.start : error.end]), error.end


codecs.register_error("pst-cp1252", _bytewise_cp1252)


@lru_cache(maxsize=256)
def _codec(label: str | None) -> str | None:
    """Python text codec for a MIME charset label ("iso-8859-1" → "cp1252"); None if unknown."""
    name = (label or "").strip().strip("\"'").lower()
    name = _ALIASES.get(name, name)
    try:
        name = codecs.lookup(name).name
        if name in _NOT_CHARSETS:
            return None
        b"a".decode(name, "replace")  # LookupError for bytes-to-bytes codecs such as base64
    except (LookupError, ValueError, TypeError):
        return None
    return _SUPERSETS.get(name, name)


@lru_cache(maxsize=64)
def _single_byte(codec: str) -> bool:
    """Whether a codec is a single-byte charset (one character per byte), ASCII below 0x80."""
    if codec in ("utf-8", "ascii"):
        return False
    try:
        return len(bytes(range(256)).decode(codec, "replace")) == 256 and b"az".decode(codec) == "az"
    except (LookupError, ValueError, TypeError, UnicodeError):
        return False


def _guess(data: bytes) -> str:
    """UTF-8 where the bytes are UTF-8, windows-1252 for each byte that is not."""
    return data.decode("utf-8", "pst-cp1252")


def decode_text(data: bytes, charset: str | None) -> tuple[str, bool]:
    """(text, True) in the declared charset, or (best guess, False) when it did not fit.

    With no charset at all, valid UTF-8 counts as fitting. A NUL character comes out as U+FFFD
    (PostgreSQL cannot store NUL in text). Never raises.
    """
    text, clean = _decode_text(data, charset)
    return (text.replace("\x00", "\ufffd") if "\x00" in text else text), clean


def _decode_text(data: bytes, charset: str | None) -> tuple[str, bool]:
    codec = _codec(charset)
    if codec in ("ascii", "utf-8") or codec is None:
        if codec == "ascii" and data.isascii():
            return data.decode("ascii"), True
        try:
            return data.decode("utf-8"), codec == "utf-8" or charset is None
        except UnicodeDecodeError:
            return _guess(data), False
    if _single_byte(codec) and not data.isascii():
        try:
            return data.decode("utf-8"), False  # UTF-8 labelled as a single-byte charset
        except UnicodeDecodeError:
            pass
    try:
        text = data.decode(codec, "pst-cp1252" if codec == "cp1252" else "strict")
        return (_LONE_SURROGATE.sub("\ufffd", text) if codec == "utf-7" else text), True
    except (UnicodeError, ValueError, TypeError, LookupError):
        pass
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        pass
    if _single_byte(codec):
        return _guess(data), False
    try:
        text = data.decode(codec, "replace")  # a multi-byte charset with a few bad bytes
        return (_LONE_SURROGATE.sub("\ufffd", text) if codec == "utf-7" else text), False
    except (UnicodeError, ValueError, TypeError, LookupError):
        return _guess(data), False


def recover_8bit(value: str) -> tuple[str, bool]:
    """A compat32 header value with raw 8-bit bytes (surrogate-escaped) → (text, was UTF-8);
    NUL characters as U+FFFD."""
    if value.isascii():
        return (value.replace("\x00", "\ufffd") if "\x00" in value else value), True
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
