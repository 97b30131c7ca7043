"""The line classifier's tables for mailer.decide.trim: what a signature line, a reply marker ("Pada …
menulis:", "On … wrote:", "-----Original Message-----") and a quoted header line look like, in
the languages of the clients the public and the officers use; and the words one of which every
such line contains, so that the patterns run only on lines that have one.
"""

from __future__ import annotations

import re

DELIMITER_LINE = re.compile(r"^[ \t]*[-_,=+~#*ᐧ—]+[ \t]*$")
DELIMITER_CHARS = frozenset("-_,=+~#*ᐧ—")  # what a delimiter line can start with
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
ON_DATE_WORDS = (  # (the opening word, the "wrote" words, stop words, "wrote" in lower case)
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
ON_INDEX = {word.split()[0]: i for i, words in enumerate(_ON_WORDS) for word in words}


def _on_date_wrote(any_char: str) -> list[re.Pattern[str]]:
    return [
        re.compile(rf"^[ \t<>-]*{on}\s(?:(?!\b(?:{stop})\b){any_char})+?{wrote}[ \t\xa0.:>-]*$", re.I | re.M)
        for on, wrote, stop, _ in ON_DATE_WORDS
    ]


_ON_DATE_WROTE = _on_date_wrote(".")  # one line
ON_DATE_WROTE_WRAPPED = _on_date_wrote("[\\s\\S]")  # wrapped by the client over several lines
SOMEONE_WROTE_ON_DATE = re.compile(r"^.+\b(wrote|schrieb|menulis)\b\s+\b(on|am|pada)\b.+[^:]+:", re.M)
DATE_SOMEONE_WROTE = re.compile(
    r"\d{4}.{1,80}(пользователь.{0,80}\n?.{0,80}?написал|\n?.{0,80}?napisał\(a\)|\n?.{0,80}?пише):"
)
DATE_SOMEONE_EMAIL = re.compile(r"\d{4}.{1,80}\s?<[^@<>]+@[^@<>.]+\.[^@<>]+>:?$", re.M)
_EMBEDDED = [
    *_ON_DATE_WROTE,
    re.compile(r"^[ \t>]*(Op|Am|Den|søn\.)\s.+\s(schreef|schrieb|skrev)\s[^:]+:"),
    DATE_SOMEONE_WROTE,
    DATE_SOMEONE_EMAIL,
    SOMEONE_WROTE_ON_DATE,
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
MARKDOWN_LINK = re.compile(r"\[([^\]]+)\]\([^)]+\)")


def _any(patterns: list[re.Pattern[str]]) -> re.Pattern[str]:
    """One regex for a list (each keeps its own case rule): one search per line instead of many."""
    return re.compile(
        "|".join(f"(?i:{p.pattern})" if p.flags & re.I else f"(?:{p.pattern})" for p in patterns)
    )


SIGNATURE_ANY = _any(_SIGNATURES)  # every alternative starts with ^: `match` is enough
HEADER_ANY = _any(_HEADERS)  # likewise
# The marker patterns anchored at the line start, and the two that may start anywhere in a line
# (run only when a line has what they end with: "написал:" …, or an address in <> at the end).
EMBEDDED_ANCHORED = _any([p for p in _EMBEDDED if p not in (DATE_SOMEONE_WROTE, DATE_SOMEONE_EMAIL)])
DATE_SOMEONE_WROTE_ENDS = ("написал:", "napisał(a):", "пише:")
SOMEONE_WROTE = ("wrote", "schrieb", "menulis")  # words SOMEONE_WROTE_ON_DATE needs (case kept)
# Lower-case words one of which every signature / marker line contains. Substring tests run in
# C; a big regex alternation of literals does not, and costs a millisecond per mail.
SIGNATURE_WORDS = (
    "kirim", "sent", "from", "mobile", "outlook", "envoy", "gesendet", "nachricht", "inviato", "sendt",
    "enviado", "verzonden", "verstuurd", "från", "從我",
)  # fmt: skip
EMBEDDED_WORDS = (
    "wrote", "writes", "said", "says", "menulis", "schrieb", "geschrieben", "écrit", "a dit", "geschreven",
    "schreef", "napisa", "escreveu", "escribió", "scritto", "写道", "пише", "написал", "skrev", "@",
    "forward", "original", "message", "posted", "diteruskan", "pesan", "transf", "ursprüng", "mensaje",
    "原始", "gmt",
)  # fmt: skip
