"""What a person wrote in a reply, without the quoted history and the phone signature.

Each line is classified (empty, delimiter, signature, embedded-mail marker, quoted-header,
quote, text) into one letter; the reply is then cut with regular expressions over that string
of letters, which is how the shapes of real replies are easiest to express (the technique of
discourse/email_reply_trimmer). Markers cover the clients the public and the officers use,
Indonesian ones first: "Pada Sen, 23 Nov 2026 pukul 09.00 Rina <…> menulis:", Outlook's
"Dari: / Dikirim: / Kepada: / Subjek:" block, "Dikirim dari iPhone saya".
Pure: `trim(text) -> (visible, elided)`; the full original is always kept elsewhere.
"""

from __future__ import annotations

import re

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
_ON_DATE_WORDS = (
    (r"Pada", r"(menulis|wrote)", r"Pada|menulis"),  # Indonesian (Gmail, Yahoo)
    (r"(On|At)", r"(wrote|writes|says|said)", r"On|wrote|writes|says|said"),
    (r"In message", r"writes", r"In message|writes"),
    (r"Op", r"(het\svolgende\sgeschreven|schreef[^:]*)", r"Op|het\svolgende\sgeschreven|schreef"),
    (r"Le", r"(nous\sa\sdit|a\s+écrit)", r"Le|nous\sa\sdit|a\s+écrit"),
    (r"Am", r"(schrieben\sSie|geschrieben|schrieb[^:]*)", r"Am|schrieben\sSie|geschrieben"),
    (r"Il", r"ha\sscritto", r"Il|ha\sscritto"),
    (r"(Dnia|Dňa)", r"napisał(\(a\))?", r"Dnia|Dňa|napisał"),
    (r"Em", r"escreveu", r"Em|escreveu"),
    (r"El", r"escribió", r"El|escribió"),
    (r"在", r"写道", r"在|写道"),
)


def _on_date_wrote(any_char: str) -> list[re.Pattern[str]]:
    return [
        re.compile(rf"^[ \t<>-]*{on}\s(?:(?!\b(?:{stop})\b){any_char})+?{wrote}[ \t\xa0.:>-]*$", re.I | re.M)
        for on, wrote, stop in _ON_DATE_WORDS
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


_SIGNATURE_ANY = _any(_SIGNATURES)
_EMBEDDED_ANY = _any(_EMBEDDED)
_HEADER_ANY = _any(_HEADERS)
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
_LINE_START_TRIGGER = re.compile(
    r"^[ \t]*[>|]|^[ \t]*[-_=~#*—ᐧ,+]+[ \t]*$|^[ \t*]*[^\W\d_][\w -]{0,20}[ \t*]*:", re.M
)


def _has(text: str, words: tuple[str, ...]) -> bool:
    return any(word in text for word in words)


def _worth_trimming(text: str) -> bool:
    """Cheap test: could anything in this text be quoted history, a marker or a signature?"""
    if _LINE_START_TRIGGER.search(text):
        return True
    lowered = text.lower()
    return _has(lowered, _EMBEDDED_WORDS) or _has(lowered, _SIGNATURE_WORDS)


def classify(line: str) -> str:
    """One letter for what a line is: e d s b h q t (see the module docstring)."""
    if not line.strip():
        return EMPTY
    if _DELIMITER.match(line):
        return DELIMITER
    plain = _MARKDOWN_LINK.sub(r"\1", line) if "](" in line else line
    lowered = plain.lower()
    if _has(lowered, _SIGNATURE_WORDS) and _SIGNATURE_ANY.search(plain):
        return SIGNATURE
    if _has(lowered, _EMBEDDED_WORDS) and _EMBEDDED_ANY.search(line):
        return EMBEDDED
    if ":" in line and _HEADER_ANY.search(line):
        return HEADER
    if _QUOTE.match(line):
        return QUOTE
    return TEXT


_QUOTE_PREFIX = re.compile(r"^((?:[ \t]*[^\W\d_]*[>|])+)", re.M)
_CODE_BLOCK = re.compile(r"^```\w*$\n.*?^```$", re.M | re.S)


def _join_lines(match: re.Match[str]) -> str:
    marker = match.group(0)
    return marker if marker.count("\n") > 4 else re.sub(r"\n+\s*", " ", marker)


def _prepare(text: str) -> str:
    """Normalise line ends, PGP wrappers, "Name>" and "|" quote styles, and join the reply
    markers a client wrapped over several lines ("On …\n… wrote:")."""
    text = re.sub(r"\r*\n", "\n", text)
    text = re.sub(r"\A-----BEGIN PGP SIGNED MESSAGE-----\n(?:Hash: \w+)?\s+", "", text, flags=re.I)
    text = re.sub(r"^-----BEGIN PGP SIGNATURE-----$[\s\S]+^-----END PGP SIGNATURE-----", "", text, flags=re.M)
    text = re.sub(r"^Unsubscribe: .+@.+(\n.+http:.+)?\s*\Z", "", text, flags=re.I | re.M)
    text = _QUOTE_PREFIX.sub(lambda m: re.sub(r"[^\W\d_]+>|\|", ">", m.group(1)), text)
    for regex in (*_ON_DATE_WROTE_WRAPPED, _SOMEONE_WROTE_ON_DATE, _DATE_SOMEONE_WROTE, _DATE_SOMEONE_EMAIL):
        text = regex.sub(
            lambda m: m.group(0) if m.group(0).count("\n") > 4 else re.sub(r"\n+\s*", " ", m.group(0)), text
        )
    return text.strip()


def _classify_all(lines: list[str]) -> str:
    """Letters for every line; lines inside a ``` code block are text whatever they look like."""
    letters, in_code = [], False
    for line in lines:
        fence = line.strip().startswith("```")
        letters.append(TEXT if in_code or fence else classify(line))
        if fence:
            in_code = not in_code
    return "".join(letters)


def trim(text: str) -> tuple[str, str]:
    """(what the person wrote, what was cut: quoted history, signature). Both stripped."""
    if not text or not text.strip():
        return "", ""
    if not _worth_trimming(text):
        return text.replace("\r\n", "\n").strip(), ""
    blocks: dict[str, str] = {}

    def hoist(match: re.Match[str]) -> str:
        token = f"\x00code{len(blocks)}\x00"
        blocks[token] = match.group(0)
        return token

    original = _CODE_BLOCK.sub(hoist, _prepare(text)).split("\n")
    lines, pattern = list(range(len(original))), _classify_all(original)  # line numbers kept

    def cut(end: int, start: int = 0) -> None:
        nonlocal lines, pattern
        lines, pattern = lines[start:end], pattern[start:end]

    def drop(letter: str) -> None:
        nonlocal lines, pattern
        kept = [(c, line) for c, line in zip(pattern, lines, strict=True) if c != letter]
        pattern, lines = "".join(c for c, _ in kept), [line for _, line in kept]

    if DELIMITER in pattern:  # "--", "____": a signature or an Outlook block follows
        cut(pattern.index(DELIMITER))
    drop(SIGNATURE)
    if re.match(r"^b[^t]+t[et]*$", pattern):  # the reply written below the quote
        cut(len(pattern), re.search(r"t[et]*$", pattern).start())  # type: ignore[union-attr]
        pattern = TEXT * len(pattern)
    for shape in (r"te*b[^q]*$", r"te*b[eqbh]*([te]*)$"):  # "On … wrote:" after text, then the quote
        match = re.search(shape, pattern)
        if match and (match.lastindex is None or match.group(1).count(TEXT) < 7):
            cut(match.start() + 1)
    match = re.search(r"t?e*[qbe]+$", pattern)
    if match:
        cut(match.start() + 1)
    drop(EMBEDDED)
    match = re.search(r"h+[hte]+h+e", pattern)
    if match:  # a quoted header block whose values wrapped over several lines
        pattern = pattern[: match.start()] + HEADER * (match.end() - match.start()) + pattern[match.end() :]
    match = re.search(r"t[eq]*h{3,}", pattern)
    if match:  # Outlook: "Dari: / Dikirim: / Kepada: / Subjek:" and the old mail below
        cut(match.start() + 1)
    drop(HEADER)
    match = re.search(r"[eq]+$", pattern)
    if TEXT in pattern and match:
        cut(match.start())
    kept = set(lines)
    visible = "\n".join(original[i] for i in lines).strip()
    elided = "\n".join(line for i, line in enumerate(original) if i not in kept).strip()
    for token, block in blocks.items():
        visible, elided = visible.replace(token, block), elided.replace(token, block)
    return visible, elided
