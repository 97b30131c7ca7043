"""Ratings on the scale of the public satisfaction survey (Survei Kepuasan Masyarakat, SKM):
1 tidak puas, 2 kurang puas, 3 puas, 4 sangat puas (the four-point scale of PermenPAN-RB
No. 14/2017 that BPS uses for its SKM). Pure: reading a score from a mail, building the
`mailto:` links of the closing mail, and the SKM-style index of a set of scores.

A rating mail is recognised two ways (the pipeline's rating step decides which mails qualify):
- the subject marker the closing mail's links put in: `Penilaian [PST-3514-2026-00042]: 4 …`
  (English: `Rating [PST-…]: 4 …`), reply prefixes allowed;
- a plain reply to the closing mail whose first lines (what the person wrote, quotes cut) give
  a score: a lone number 1–4 ("4", "4/4", "nilai: 3", "3 dari 4") or the scale's words in
  Indonesian or English ("sangat puas", "puas", "kurang puas", "tidak puas", "very satisfied",
  "satisfied", "less satisfied", "not satisfied", …).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

LABELS = {
    "id": {1: "Tidak puas", 2: "Kurang puas", 3: "Puas", 4: "Sangat puas"},
    "en": {1: "Not satisfied", 2: "Less satisfied", 3: "Satisfied", 4: "Very satisfied"},
}
MARKER = {"id": "Penilaian", "en": "Rating"}
_SUBJECT = re.compile(
    r"\b(?:penilaian|rating)\b[^\[\]]*\[(PST-(\d{4})-\d{4}-\d+)\]\s*[:=-]?\s*([1-4])(?!\d)", re.IGNORECASE
)
# Longest phrases first: "not very satisfied" before "very satisfied", "tidak puas" before "puas".
_WORDS: tuple[tuple[str, int], ...] = (
    ("sangat tidak puas", 1),
    ("tidak puas", 1),
    ("kurang puas", 2),
    ("sangat puas", 4),
    ("puas", 3),
    ("very dissatisfied", 1),
    ("not very satisfied", 2),
    ("not satisfied", 1),
    ("dissatisfied", 1),
    ("unsatisfied", 1),
    ("less satisfied", 2),
    ("somewhat satisfied", 2),
    ("very satisfied", 4),
    ("extremely satisfied", 4),
    ("satisfied", 3),
)
_WORD_PATTERNS = tuple((re.compile(rf"(?<![a-z]){re.escape(w)}(?![a-z])"), score) for w, score in _WORDS)
_NUMBER = re.compile(
    r"^(?:(?:nilai|skor|score|rating|penilaian|nilai saya|my rating)\s*(?:saya\s*)?[:=]?\s*)?"
    r"([1-4])(?:\s*(?:/|dari|of|out of)\s*4)?(?![\d.,]\d)([\s.!,)(-].*)?$"
)
_THANKS = re.compile(r"^(terima ?kasih|makasih|thanks?|thank you)\b")
_SCAN_LINES = 3


@dataclass(frozen=True, slots=True)
class Marked:
    """A score found in a subject's rating marker, and the ticket it names."""

    ref: str
    score: int


def subject_rating(subject: str, office_code: str) -> Marked | None:
    """The rating marker of a subject for this office's tickets, or None."""
    for match in _SUBJECT.finditer(subject):
        if match.group(2) == office_code:
            return Marked(match.group(1), int(match.group(3)))
    return None


def reply_score(fresh_text: str) -> int | None:
    """The score in what a person wrote (quotes already cut): its first few non-empty lines,
    a lone number 1–4 or the scale's words; None if they say no score."""
    lines = [line.strip() for line in fresh_text.splitlines() if line.strip()][:_SCAN_LINES]
    for line in lines:
        text = " ".join(line.casefold().replace("*", " ").split())
        number = _NUMBER.match(text)
        if number and _plain_rest(number.group(2) or ""):
            return int(number.group(1))
        for pattern, score in _WORD_PATTERNS:
            if pattern.search(text):
                return score
    return None


def _plain_rest(rest: str) -> bool:
    """After a number, only punctuation, the scale's words or thanks: "4 (sangat puas)",
    "3, terima kasih"; not "2 tabel lagi" (a question that starts with a number)."""
    rest = rest.strip(" .!,()-")
    return not rest or bool(_THANKS.match(rest)) or any(p.search(rest) for p, _ in _WORD_PATTERNS)


def marker_subject(ref: str, score: int, lang: str) -> str:
    """The subject a rating link opens a reply with: "Penilaian [PST-…]: 4 (Sangat puas)"."""
    return f"{MARKER[lang]} [{ref}]: {score} ({LABELS[lang][score]})"


def mailto(office_email: str, ref: str, score: int, lang: str) -> str:
    """A `mailto:` link (RFC 6068) that opens a mail to the office with the score in it."""
    body = (
        f"Penilaian saya: {score} ({LABELS[lang][score]})"
        if lang == "id"
        else f"My rating: {score} ({LABELS[lang][score]})"
    )
    subject = quote(marker_subject(ref, score, lang), safe="")
    return f"mailto:{office_email}?subject={subject}&body={quote(body, safe='')}"


@dataclass(frozen=True, slots=True)
class Summary:
    """Ratings of a period: how many, their average (1–4), the SKM-style index (25–100) and the
    quality grade of PermenPAN-RB 14/2017 (A 88.31–100, B 76.61–88.30, C 65.00–76.60, D 25.00–64.99)."""

    count: int
    average: float | None
    index: float | None
    grade: str
    by_score: tuple[int, int, int, int]


def summarise(scores: Sequence[int]) -> Summary:
    """The index is the average score × 25 (the SKM conversion: 1 → 25, 4 → 100)."""
    by_score = tuple(sum(1 for s in scores if s == k) for k in (1, 2, 3, 4))
    if not scores:
        return Summary(0, None, None, "", (0, 0, 0, 0))
    average = sum(scores) / len(scores)
    index = average * 25
    grade = "A" if index >= 88.31 else "B" if index >= 76.61 else "C" if index >= 65.0 else "D"
    return Summary(len(scores), average, index, grade, by_score)  # type: ignore[arg-type]
