"""What a person wrote in a reply, without the quoted history and the phone signature.

Each line is classified (empty, delimiter, signature, embedded-mail marker, quoted-header,
quote, text) into one letter; the reply is then cut with regular expressions over that string
of letters, which is how the shapes of real replies are easiest to express (the technique of
discourse/email_reply_trimmer). Markers cover the clients the public and the officers use,
Indonesian ones first: "Pada Sen, 23 Nov 2026 pukul 09.00 Rina <…> menulis:", Outlook's
"Dari: / Dikirim: / Kepada: / Subjek:" block, "Dikirim dari iPhone saya".
Pure: `trim(text) -> (visible, elided)`; the full original is always kept elsewhere.

It runs on every incoming mail, so it is kept cheap (bench/parse_speed.py measures it): the
marker and signature words are looked for once in the whole text with substring tests, the
line patterns run only on lines that have such a word, and the wrapped-marker joins are tried
only from the lines they can start on instead of being searched for at every character.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from mailer.decide.trim_patterns import (
    DATE_SOMEONE_EMAIL,
    DATE_SOMEONE_WROTE,
    DATE_SOMEONE_WROTE_ENDS,
    DELIMITER_CHARS,
    DELIMITER_LINE,
    EMBEDDED_ANCHORED,
    EMBEDDED_WORDS,
    HEADER_ANY,
    MARKDOWN_LINK,
    ON_DATE_WORDS,
    ON_DATE_WROTE_WRAPPED,
    ON_INDEX,
    SIGNATURE_ANY,
    SIGNATURE_WORDS,
    SOMEONE_WROTE,
    SOMEONE_WROTE_ON_DATE,
)

EMPTY, DELIMITER, SIGNATURE, EMBEDDED, HEADER, QUOTE, TEXT = "e", "d", "s", "b", "h", "q", "t"


def _has(text: str, words: tuple[str, ...]) -> bool:
    for word in words:  # noqa: SIM110 (a plain loop: any() with a generator costs twice as much)
        if word in text:
            return True
    return False


def classify(line: str) -> str:
    """One letter for what a line is: e d s b h q t (see the module docstring)."""
    lowered = line.lower()
    return _classify(line, _has(lowered, SIGNATURE_WORDS), _has(lowered, EMBEDDED_WORDS))


def _classify(line: str, signature_word: bool, embedded_word: bool) -> str:
    """`classify`, told whether the line has one of the signature / marker words."""
    stripped = line.strip()
    if not stripped:
        return EMPTY
    if stripped[0] in DELIMITER_CHARS and DELIMITER_LINE.match(line):
        return DELIMITER
    plain = line
    if "](" in line:  # the words of a markdown link's text count, not those of its address
        plain = MARKDOWN_LINK.sub(r"\1", line)
        lowered = plain.lower()
        signature_word, embedded_word = _has(lowered, SIGNATURE_WORDS), _has(lowered, EMBEDDED_WORDS)
    if signature_word and SIGNATURE_ANY.match(plain):
        return SIGNATURE
    if embedded_word and _is_marker(line):
        return EMBEDDED
    if ":" in line and HEADER_ANY.match(line):
        return HEADER
    if stripped[0] == ">" and line.lstrip(" \t")[:1] == ">":
        return QUOTE
    return TEXT


def _is_marker(line: str) -> bool:
    """Whether a line is an "On … wrote:" / forwarded-message marker (one of trim_patterns._EMBEDDED)."""
    if EMBEDDED_ANCHORED.match(line):
        return True
    if _has(line, DATE_SOMEONE_WROTE_ENDS) and DATE_SOMEONE_WROTE.search(line):
        return True
    return line.endswith((">", ">:")) and DATE_SOMEONE_EMAIL.search(line) is not None


_QUOTE_PREFIX = re.compile(r"((?:[ \t]*[^\W\d_]*[>|])+)")
_QUOTE_MARK = re.compile(r"[^\W\d_]+>|\|")
_CODE_BLOCK = re.compile(r"^```\w*$\n.*?^```$", re.M | re.S)
_CR_LF = re.compile(r"\r*\n")
_PGP_HEAD = re.compile(r"\A-----BEGIN PGP SIGNED MESSAGE-----\n(?:Hash: \w+)?\s+", re.I)
_PGP_SIGNATURE = re.compile(r"^-----BEGIN PGP SIGNATURE-----$[\s\S]+^-----END PGP SIGNATURE-----", re.M)
_UNSUBSCRIBE = re.compile(r"^Unsubscribe: .+@.+(\n.+http:.+)?\s*\Z", re.I | re.M)
_JOIN = re.compile(r"\n+\s*")


def _join_lines(match: re.Match[str]) -> str:
    marker = match.group(0)
    return marker if marker.count("\n") > 4 else _JOIN.sub(" ", marker)


def _normalise_quotes(text: str) -> str:
    """ "Name> " and "| " quote prefixes made "> " (lines quoted the usual way are left alone)."""
    if ">" not in text and "|" not in text:
        return text
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if ">" in line or "|" in line:
            found = _QUOTE_PREFIX.match(line)
            if found and found.group(1).strip(" \t>"):
                lines[i] = _QUOTE_MARK.sub(">", found.group(1)) + line[found.end() :]
    return "\n".join(lines)


def _line_starts(text: str) -> list[int]:
    starts, at = [0], text.find("\n")
    while at >= 0:
        starts.append(at + 1)
        at = text.find("\n", at + 1)
    return starts


def _find_all(text: str, word: str) -> Iterator[int]:
    at = text.find(word)
    while at >= 0:
        yield at
        at = text.find(word, at + 1)


def _join_matches(regex: re.Pattern[str], text: str, starts: Iterable[int]) -> str:
    """`regex.sub(_join_lines, text)` for a regex that can only match from one of `starts`
    (offsets of line starts, in order): tried there alone instead of at every character."""
    pieces, done = [], 0
    for start in starts:
        if start < done:
            continue
        found = regex.match(text, start)
        if found:
            pieces += [text[done:start], _join_lines(found)]
            done = found.end()
    return "".join(pieces) + text[done:] if pieces else text


def _join_wrapped_markers(text: str) -> str:
    """Reply markers a client wrapped over several lines ("On …\n… wrote:") joined into one.

    Each pattern is tried only from the lines that begin with its opening word, and only when
    its "wrote" word occurs: the same result as a `sub` over the text, a tenth of the time.
    """
    starts = _marker_starts(text)
    lowered = text.lower() if starts else ""
    for index, regex in enumerate(ON_DATE_WROTE_WRAPPED):
        if index not in starts or not _has(lowered, ON_DATE_WORDS[index][3]):
            continue
        joined = _join_matches(regex, text, starts[index])
        if joined != text:  # lines moved: find the starts again
            text, lowered, starts = joined, joined.lower(), _marker_starts(joined)
    if _has(text, SOMEONE_WROTE):  # it starts on a line with one of these words
        found = {text.rfind("\n", 0, at) + 1 for word in SOMEONE_WROTE for at in _find_all(text, word)}
        text = _join_matches(SOMEONE_WROTE_ON_DATE, text, sorted(found))
    if _has(text, DATE_SOMEONE_WROTE_ENDS):
        text = DATE_SOMEONE_WROTE.sub(_join_lines, text)
    if ">\n" in text or ">:\n" in text or text.endswith((">", ">:")):
        text = _join_date_email(text)
    return text


def _marker_starts(text: str) -> dict[int, list[int]]:
    """{index in ON_DATE_WORDS: offsets of the lines whose first word is its opening word}."""
    found: dict[int, list[int]] = {}
    at = 0
    for line in text.split("\n"):
        head = line.lstrip(" \t<>-")[:12].split(None, 1)
        if head:
            index = ON_INDEX.get(head[0].lower())
            if index is not None:
                found.setdefault(index, []).append(at)
        at += len(line) + 1
    return found


def _join_date_email(text: str) -> str:
    """`DATE_SOMEONE_EMAIL.sub(_join_lines, text)`, searched only near the lines it can end on.

    A match ends at the end of a line ending in ">" or ">:" and starts at most one line
    earlier, so one that starts by the end of such a line lies within it, the line before
    and the line after.
    """
    ends = sorted(
        set(_find_all(text, ">\n"))
        | {at + 1 for at in _find_all(text, ">:\n")}
        | ({len(text) - 1} if text.endswith((">", ">:")) else set())
    )
    pieces, done = [], 0
    for end in ends:  # the offset of the last character of such a line
        line_end = end + 1
        line_start = text.rfind("\n", 0, line_end) + 1
        low = max(done, text.rfind("\n", 0, max(line_start - 1, 0)) + 1 if line_start else 0)
        if low > line_end:
            continue
        after = text.find("\n", line_end + 1)
        found = DATE_SOMEONE_EMAIL.search(text, low, len(text) if after < 0 else after)
        if found and found.start() <= line_end:
            pieces += [text[done : found.start()], _join_lines(found)]
            done = found.end()
    return "".join(pieces) + text[done:] if pieces else text


def _prepare(text: str) -> str:
    """Normalise line ends, PGP wrappers, "Name>" and "|" quote styles, and join the reply
    markers a client wrapped over several lines ("On …\n… wrote:")."""
    if "\r" in text:
        text = _CR_LF.sub("\n", text)
    if "-----" in text:
        text = _PGP_SIGNATURE.sub("", _PGP_HEAD.sub("", text))
    if "unsubscribe: " in text.lower():
        text = _UNSUBSCRIBE.sub("", text)
    return _join_wrapped_markers(_normalise_quotes(text)).strip()


def _lines_with(lowered: str, words: tuple[str, ...]) -> set[int]:
    """Numbers of the lines of `lowered` that contain one of `words`."""
    found: set[int] = set()
    for word in words:
        at = lowered.find(word)
        while at >= 0:
            found.add(lowered.count("\n", 0, at))
            at = lowered.find(word, at + 1)
    return found


def _classify_all(lines: list[str], lowered: str) -> str:
    """Letters for every line; lines inside a ``` code block are text whatever they look like.
    `lowered` is the whole text in lower case, where the signature and marker words are found
    once for all lines."""
    signature, embedded = _lines_with(lowered, SIGNATURE_WORDS), _lines_with(lowered, EMBEDDED_WORDS)
    if "```" not in lowered:
        return "".join([_classify(line, i in signature, i in embedded) for i, line in enumerate(lines)])
    letters, in_code = [], False
    for i, line in enumerate(lines):
        fence = line.strip().startswith("```")
        letters.append(TEXT if in_code or fence else _classify(line, i in signature, i in embedded))
        if fence:
            in_code = not in_code
    return "".join(letters)


# Shapes of the string of line letters (see trim).
_BELOW_QUOTE = re.compile(r"^b[^t]+t[et]*$")
_TEXT_TAIL = re.compile(r"t[et]*$")
_MARKER_SHAPES = (re.compile(r"te*b[^q]*$"), re.compile(r"te*b[eqbh]*([te]*)$"))
_QUOTE_TAIL = re.compile(r"t?e*[qbe]+$")
_WRAPPED_HEADERS = re.compile(r"h+[hte]+h+e")
_HEADER_BLOCK = re.compile(r"t[eq]*h{3,}")
_EMPTY_TAIL = re.compile(r"[eq]+$")


def trim(text: str) -> tuple[str, str]:
    """(what the person wrote, what was cut: quoted history, signature). Both stripped."""
    if not text or not text.strip():
        return "", ""
    blocks: dict[str, str] = {}

    def hoist(match: re.Match[str]) -> str:
        token = f"\x00code{len(blocks)}\x00"
        blocks[token] = match.group(0)
        return token

    prepared = _prepare(text)
    if "```" in prepared:
        prepared = _CODE_BLOCK.sub(hoist, prepared)
    original = prepared.split("\n")
    pattern = _classify_all(original, prepared.lower())
    lines = list(range(len(original)))  # line numbers kept

    def cut(end: int, start: int = 0) -> None:
        nonlocal lines, pattern
        lines, pattern = lines[start:end], pattern[start:end]

    def drop(letter: str) -> None:
        nonlocal lines, pattern
        if letter not in pattern:
            return
        kept = [(c, line) for c, line in zip(pattern, lines, strict=True) if c != letter]
        pattern, lines = "".join(c for c, _ in kept), [line for _, line in kept]

    if DELIMITER in pattern:  # "--", "____": a signature or an Outlook block follows
        cut(pattern.index(DELIMITER))
    drop(SIGNATURE)
    if _BELOW_QUOTE.match(pattern):  # the reply written below the quote
        cut(len(pattern), _TEXT_TAIL.search(pattern).start())  # type: ignore[union-attr]
        pattern = TEXT * len(pattern)
    for shape in _MARKER_SHAPES:  # "On … wrote:" after text, then the quote
        match = shape.search(pattern)
        if match and (match.lastindex is None or match.group(1).count(TEXT) < 7):
            cut(match.start() + 1)
    match = _QUOTE_TAIL.search(pattern)
    if match:
        cut(match.start() + 1)
    drop(EMBEDDED)
    match = _WRAPPED_HEADERS.search(pattern)
    if match:  # a quoted header block whose values wrapped over several lines
        pattern = pattern[: match.start()] + HEADER * (match.end() - match.start()) + pattern[match.end() :]
    match = _HEADER_BLOCK.search(pattern)
    if match:  # Outlook: "Dari: / Dikirim: / Kepada: / Subjek:" and the old mail below
        cut(match.start() + 1)
    drop(HEADER)
    match = _EMPTY_TAIL.search(pattern)
    if TEXT in pattern and match:
        cut(match.start())
    kept = set(lines)
    visible = "\n".join(original[i] for i in lines).strip()
    elided = "\n".join(line for i, line in enumerate(original) if i not in kept).strip()
    for token, block in blocks.items():
        visible, elided = visible.replace(token, block), elided.replace(token, block)
    return visible, elided
