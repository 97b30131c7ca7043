"""Text from mail made safe for an operator's terminal.

A subject or a name may carry ESC and BEL sequences (a changed window title, a cleared screen,
a fake prompt) or bidirectional overrides that reorder what is shown. Every command that prints
something a mail brought goes through `out`: such characters are shown as visible escapes
(`\\x1b`, `\\u202e`); line feeds and tabs stay as they are.
"""

from __future__ import annotations

import sys
from typing import TextIO

_KEPT = {"\n", "\t"}
_BIDI = [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_CONTROLS = [c for c in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)] if chr(c) not in _KEPT]
_TABLE = {c: (f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}") for c in [*_CONTROLS, *_BIDI]}


def safe(text: str) -> str:
    """`text` with terminal control characters (CR, ESC, BEL, C1, bidi overrides) made visible."""
    return text.translate(_TABLE)


def out(*parts: object, file: TextIO | None = None, sep: str = " ") -> None:
    """`print` for text that may come from a mail: each part made `safe` first."""
    print(*(safe(str(part)) for part in parts), sep=sep, file=file if file is not None else sys.stdout)
