"""HTML → readable plain text, for mails that have no text/plain part (stdlib html.parser only).

Script, style and title are dropped; block elements become line breaks; entities are
unescaped; a <blockquote> becomes "> "-prefixed lines so that quoted history in an HTML-only
reply still looks quoted to the reply trimmer. Never raises.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

_SKIP = frozenset({"script", "style", "title", "template"})
_LINE = frozenset({"div", "li", "tr", "dd", "dt", "section", "article", "header", "footer"})
_PARAGRAPH = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "dl", "pre", "hr", "address"}
)
_CELL = frozenset({"td", "th"})
_SPACES = re.compile(r"[ \t\r\n\f\v\xa0]+")
_TAG = re.compile(r"<[^>]*>")


@dataclass(slots=True)
class _Line:
    """One output line: its blockquote depth, whether it is preformatted, and its fragments."""

    depth: int
    pre: bool
    parts: list[str] = field(default_factory=list)

    def blank(self) -> bool:
        """True when the line holds nothing but white space."""
        return not "".join(self.parts).strip()


class _TextBuilder(HTMLParser):
    """Collects `_Line`s while parsing; `text()` joins them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._lines = [_Line(0, False)]
        self._skip = 0
        self._quote = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag(tag, opening=True)

    def handle_endtag(self, tag: str) -> None:
        self._tag(tag, opening=False)

    def _tag(self, tag: str, opening: bool) -> None:
        step = 1 if opening else -1
        if tag in _SKIP:
            self._skip = max(0, self._skip + step)
        elif tag == "br" and opening:
            self._new_line()
        elif tag == "blockquote":
            self._quote = max(0, self._quote + step)
            self._break(blank=True)
        elif tag in _PARAGRAPH:
            self._pre = max(0, self._pre + step) if tag == "pre" else self._pre
            self._break(blank=True)
        elif tag in _LINE:
            self._break(blank=False)
            if tag == "li" and opening:
                self._lines[-1].parts.append("- ")
        elif tag in _CELL and opening:
            self._lines[-1].parts.append(" ")

    def _new_line(self, text: str = "") -> None:
        """Start a line at the current quote depth, even after an empty one (<br><br>)."""
        self._lines.append(_Line(self._quote, self._pre > 0, [text]))

    def _break(self, blank: bool) -> None:
        """Start a new line unless the current one is empty; `blank` also leaves an empty line."""
        if not self._lines[-1].blank():
            self._new_line()
        if blank and len(self._lines) > 1 and not self._lines[-2].blank():
            self._new_line()
        self._lines[-1].depth, self._lines[-1].pre = self._quote, self._pre > 0

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if not self._pre:
            self._lines[-1].parts.append(_SPACES.sub(" ", data))
            return
        first, *rest = data.replace("\r\n", "\n").split("\n")
        self._lines[-1].parts.append(first)
        for line in rest:
            self._new_line(line)

    def text(self) -> str:
        """The collected lines, stripped, with runs of blank lines collapsed to one."""
        out: list[str] = []
        for item in self._lines:
            line = "".join(item.parts).replace("\xa0", " ")
            line = line.rstrip() if item.pre else _SPACES.sub(" ", line).strip()
            line = ("> " * item.depth + line).rstrip()
            if line or (out and out[-1]):
                out.append(line)
        return "\n".join(out).strip("\n")


def html_to_text(markup: str) -> str:
    """Readable text of an HTML document: "Para one\\n\\nLine\\nLine\\n> quoted"."""
    builder = _TextBuilder()
    try:
        builder.feed(markup)
        builder.close()
    except (AssertionError, ValueError, IndexError, TypeError):  # html.parser on broken markup
        return _SPACES.sub(" ", html.unescape(_TAG.sub(" ", markup))).strip()
    return builder.text()
