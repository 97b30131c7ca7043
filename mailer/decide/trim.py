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

EMPTY, DELIMITER, SIGNATURE, EMBEDDED, HEADER, QUOTE, TEXT = "e", "d", "s", "b", "h", "q", "t"

_DELIMITER = re.compile(r"^[ \t]*[-_,=+~#*ᐧ—]+[ \t]*$")
_QUOTE = re.compile(r"^[ \t]*>")
_SIGNATURES = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"^[ \t]*dikirim dari ",  # Dikirim dari iPhone saya / Yahoo Mail di Android
        r"^[ \t]*terkirim dari ",
        r"^[ \t]*kirim dari (ponsel|hp|android|iphone)",
        r"^[ \t]*[\w]+ from mobile",
        r"^[ \t]*[(<]*sent (from|via|with|by) .+",
        r"^[ \t]*from my .{1,20}$",
        r"^[ \t]*get outlook for ",
        r"^[ \t]*dapatkan outlook untuk ",
        r"^[ \t]*envoyé depuis (mon|yahoo mail)",
        r"^[ \t]*von meinem .+ gesendet",
        r"^[ \t]*diese nachricht wurde von .+ gesendet",
        r"^[ \t]*inviato da ",
        r"^[ \t]*sendt fra min ",
        r"^[ \t]*enviado (do meu|desde mi) ",
        r"^[ \t]*(verzonden met|verstuurd vanaf mijn) ",
        r"^[ \t]*från min ",
        r"^[ \t]*從我的 iphone 傳送",
    )
]

# "On <date>, <someone> wrote:" in many languages; may span lines before being joined.
_ON_DATE_WORDS = (  # (the opening word, the "wrote" words, stop words, "wrote" in lower case)
    (r"Pada", r"(menulis|wrote)", r"Pada|menulis", ("menulis", "wrote")),  # Indonesian (Gmail, Yahoo)
    (r"(On|At)", r"(wrote|writes|says|said)", r"On|wrote|writes|says|said",
     ("wrote", "writes", "says", "said")),
    (r"In message", r"writes", r"In message|writes", ("writes",)),
    (r"Op", r"(het\svolgende\sgeschreven|schreef[^:]*)", r"Op|het\svolgende\sgeschreven|schreef",
     ("geschreven", "schreef")),
    (r"Le", r"(nous\sa\sdit|a\s+écrit)", r"Le|nous\sa\sdit|a\s+écrit", ("dit", "écrit")),
    (r"Am", r"(schrieben\sSie|geschrieben|schrieb[^:]*)", r"Am|schrieben\sSie|geschrieben", ("schrieb",)),
    (r"Il", r"ha\sscritto", r"Il|ha\sscritto", ("scritto",)),
    (r"(Dnia|Dňa)", r"napisał(\(a\))?", r"Dnia|Dňa|napisał", ("napisał",)),
    (r"Em", r"escreveu", r"Em|escreveu", ("escreveu",)),
    (r"El", r"escribió", r"El|escribió", ("escribió",)),
    (r"在", r"写道", r"在|写道", ("写道",)),
)  # fmt: skip
# The opening words in lower case, for finding the lines a marker can start on (their first
# word: "in message" starts with "in").
_ON_WORDS = (
    ("pada",), ("on", "at"), ("in message",), ("op",), ("le",), ("am",), ("il",), ("dnia", "dňa"), ("em",),
    ("el",), ("在",),
)  # fmt: skip
_ON_INDEX = {word.split()[0]: i for i, words in enumerate(_ON_WORDS) for word in words}


def _on_date_wrote(any_char: str) -> list[re.Pattern[str]]:
    return [
        re.compile(rf"^[ \t<>-]*{on}\s(?:(?!\b(?:{stop})\b){any_char})+?{wrote}[ \t\xa0.:>-]*$", re.I | re.M)
        for on, wrote, stop, _ in _ON_DATE_WORDS
    ]


_ON_DATE_WROTE = _on_date_wrote(".")  # one line
_ON_DATE_WROTE_WRAPPED = _on_date_wrote("[\\s\\S]")  # wrapped by the client over several lines
_SOMEONE_WROTE_ON_DATE = re.compile(r"^.+\b(wrote|schrieb|menulis)\b\s+\b(on|am|pada)\b.+[^:]+:", re.M)
_DATE_SOMEONE_WROTE = re.compile(
    r"\d{4}.{1,80}(пользователь.{0,80}\n?.{0,80}?написал|\n?.{0,80}?napisał\(a\)|\n?.{0,80}?пише):"
)
_DATE_SOMEONE_EMAIL = re.compile(r"\d{4}.{1,80}\s?<[^@<>]+@[^@<>.]+\.[^@<>]+>:?$", re.M)
_EMBEDDED = [
    *_ON_DATE_WROTE,
    re.compile(r"^[ \t>]*(Op|Am|Den|søn\.)\s.+\s(schreef|schrieb|skrev)\s[^:]+:"),
    _DATE_SOMEONE_WROTE,
    _DATE_SOMEONE_EMAIL,
    _SOMEONE_WROTE_ON_DATE,
    re.compile(r"^[ \t>]*20\d\d-\d\d-\d\d \d\d:\d\d GMT\+\d\d:\d\d [\w \t]+$"),
    re.compile(r"^.+ via .+ (wrote|schrieb|menulis):?[ \t]*$"),
    re.compile(r"^.+\b[\w.+-]+@[\w.-]+\.\w{2,}\b.+(wrote|menulis):?$"),
    re.compile(r"^[ \t>]*Posted by .+ on \d{2}/\d{2}/\d{4}$", re.IGNORECASE),
    re.compile(
        r"^[ \t>]*(Begin forwarded message|Awal pesan yang diteruskan|Début du message transféré ?):",
        re.IGNORECASE,
    ),
    re.compile(
        r"^[ \t>*]*-{2,}[ \t]*(Forwarded|Original|Reply) Message[ \t]*-{2,}"
        r"|^[ \t>*]*-{2,}[ \t]*(Pesan (Asli|Terusan|yang diteruskan)|Message transféré"
        r"|Ursprüngliche Nachricht|Mensaje original|原始邮件)[ \t]*-{2,}",
        re.IGNORECASE,
    ),
]
_HEADER_DATE_WORDS = (
    r"Dikirim|Terkirim|Tanggal|Waktu|Sendt|Sent|Date|Le|Gesendet|Enviada em|Enviado|Fecha|Data|Datum"
    r"|Skickat|发送时间"
)
_HEADER_TEXT_WORDS = (
    r"Dari|Kepada|Untuk|Tembusan|Subjek|Perihal|Judul|Balas ke|Fra|Til|Emne|From|To|Cc|Reply-To|Subject"
    r"|De|Expéditeur|À|Destinataire|Répondre à|Objet|Von|An|Betreff|Para|Assunto|Asunto|Da|Risposta|A"
    r"|Oggetto|Van|Beantwoorden - Aan|Aan|Onderwerp|Från|Till|Ämne|发件人|收件人|主题"
)
_HEADERS = [
    re.compile(rf"^[ \t*]*(?:{_HEADER_DATE_WORDS})[ \t*]*:.*\d+"),
    re.compile(rf"^[ \t*]*(?:{_HEADER_TEXT_WORDS})[ \t*]*:.*\w+", re.IGNORECASE),
]
_MARKDOWN_LINK = re.compile(r"\[([^\]]+)\]\([^)]+\)")


def _any(patterns: list[re.Pattern[str]]) -> re.Pattern[str]:
    """One regex for a list (each keeps its own case rule): one search per line instead of many."""
    return re.compile(
        "|".join(f"(?i:{p.pattern})" if p.flags & re.I else f"(?:{p.pattern})" for p in patterns)
    )


_SIGNATURE_ANY = _any(_SIGNATURES)  # every alternative starts with ^: `match` is enough
_HEADER_ANY = _any(_HEADERS)  # likewise
# The marker patterns anchored at the line start, and the two that may start anywhere in a line
# (run only when a line has what they end with: "написал:" …, or an address in <> at the end).
_EMBEDDED_ANCHORED = _any([p for p in _EMBEDDED if p not in (_DATE_SOMEONE_WROTE, _DATE_SOMEONE_EMAIL)])
_DATE_SOMEONE_WROTE_ENDS = ("написал:", "napisał(a):", "пише:")
_SOMEONE_WROTE = ("wrote", "schrieb", "menulis")  # words _SOMEONE_WROTE_ON_DATE needs (case kept)
# Lower-case words one of which every signature / marker line contains. Substring tests run in
# C; a big regex alternation of literals does not, and costs a millisecond per mail.
_SIGNATURE_WORDS = (
    "kirim", "sent", "from", "mobile", "outlook", "envoy", "gesendet", "nachricht", "inviato", "sendt",
    "enviado", "verzonden", "verstuurd", "från", "從我",
)  # fmt: skip
_EMBEDDED_WORDS = (
    "wrote", "writes", "said", "says", "menulis", "schrieb", "geschrieben", "écrit", "a dit", "geschreven",
    "schreef", "napisa", "escreveu", "escribió", "scritto", "写道", "пише", "написал", "skrev", "@",
    "forward", "original", "message", "posted", "diteruskan", "pesan", "transf", "ursprüng", "mensaje",
    "原始", "gmt",
)  # fmt: skip
_DELIMITER_CHARS = frozenset("-_,=+~#*ᐧ—")


def _has(text: str, words: tuple[str, ...]) -> bool:
    for word in words:  # noqa: SIM110 (a plain loop: any() with a generator costs twice as much)
        if word in text:
            return True
    return False


def classify(line: str) -> str:
    """One letter for what a line is: e d s b h q t (see the module docstring)."""
    lowered = line.lower()
    return _classify(line, _has(lowered, _SIGNATURE_WORDS), _has(lowered, _EMBEDDED_WORDS))


def _classify(line: str, signature_word: bool, embedded_word: bool) -> str:
    """`classify`, told whether the line has one of the signature / marker words."""
    stripped = line.strip()
    if not stripped:
        return EMPTY
    if stripped[0] in _DELIMITER_CHARS and _DELIMITER.match(line):
        return DELIMITER
    plain = line
    if "](" in line:  # the words of a markdown link's text count, not those of its address
        plain = _MARKDOWN_LINK.sub(r"\1", line)
        lowered = plain.lower()
        signature_word, embedded_word = _has(lowered, _SIGNATURE_WORDS), _has(lowered, _EMBEDDED_WORDS)
    if signature_word and _SIGNATURE_ANY.match(plain):
        return SIGNATURE
    if embedded_word and _is_marker(line):
        return EMBEDDED
    if ":" in line and _HEADER_ANY.match(line):
        return HEADER
    if stripped[0] == ">" and line.lstrip(" \t")[:1] == ">":
        return QUOTE
    return TEXT


def _is_marker(line: str) -> bool:
    """Whether a line is an "On … wrote:" / forwarded-message marker (one of _EMBEDDED)."""
    if _EMBEDDED_ANCHORED.match(line):
        return True
    if _has(line, _DATE_SOMEONE_WROTE_ENDS) and _DATE_SOMEONE_WROTE.search(line):
        return True
    return line.endswith((">", ">:")) and _DATE_SOMEONE_EMAIL.search(line) is not None


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
    for index, regex in enumerate(_ON_DATE_WROTE_WRAPPED):
        if index not in starts or not _has(lowered, _ON_DATE_WORDS[index][3]):
            continue
        joined = _join_matches(regex, text, starts[index])
        if joined != text:  # lines moved: find the starts again
            text, lowered, starts = joined, joined.lower(), _marker_starts(joined)
    if _has(text, _SOMEONE_WROTE):  # it starts on a line with one of these words
        found = {text.rfind("\n", 0, at) + 1 for word in _SOMEONE_WROTE for at in _find_all(text, word)}
        text = _join_matches(_SOMEONE_WROTE_ON_DATE, text, sorted(found))
    if _has(text, _DATE_SOMEONE_WROTE_ENDS):
        text = _DATE_SOMEONE_WROTE.sub(_join_lines, text)
    if ">\n" in text or ">:\n" in text or text.endswith((">", ">:")):
        text = _join_date_email(text)
    return text


def _marker_starts(text: str) -> dict[int, list[int]]:
    """{index in _ON_DATE_WORDS: offsets of the lines whose first word is its opening word}."""
    found: dict[int, list[int]] = {}
    at = 0
    for line in text.split("\n"):
        head = line.lstrip(" \t<>-")[:12].split(None, 1)
        if head:
            index = _ON_INDEX.get(head[0].lower())
            if index is not None:
                found.setdefault(index, []).append(at)
        at += len(line) + 1
    return found


def _join_date_email(text: str) -> str:
    """`_DATE_SOMEONE_EMAIL.sub(_join_lines, text)`, searched only near the lines it can end on.

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
        found = _DATE_SOMEONE_EMAIL.search(text, low, len(text) if after < 0 else after)
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
    signature, embedded = _lines_with(lowered, _SIGNATURE_WORDS), _lines_with(lowered, _EMBEDDED_WORDS)
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
