"""One vocabulary: the words the tables store (storage/vocabulary.py) are named by their enum
members in mailer/, never spelled out. A walk over the AST of mailer/**/*.py finds the places a
bare word would be a stored value: comparisons, keyword arguments and dict keys named
state/kind/resolution/direction, `enqueue`'s kind, and literal lists of such words. Words in
log messages, docstrings and template names are left alone."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.vocabulary import (
    Direction,
    MessageKind,
    OutboxState,
    Resolution,
    ShownOutboxState,
    TicketKind,
    TicketState,
)

ROOT = Path(__file__).resolve().parent.parent
MAILER = ROOT / "mailer"
EXCLUDED: tuple[Path, ...] = ()

STATES = {*TicketState, *OutboxState, *ShownOutboxState}
KINDS = {*MessageKind, *TicketKind}
# Which words a name stands for: `x.state == "open"`, `kind="ack"`, {"resolution": "spam"}.
FIELDS: dict[str, set[str]] = {
    "state": STATES,
    "kind": KINDS,
    "resolution": set(Resolution),
    "direction": set(Direction),
}
# Lists of two or more words of one vocabulary: ("pending", "deferred"), ("spam", "duplicate").
VOCABULARIES = (STATES, KINDS, set(Resolution) - {""}, set(Direction))


def _words(node: ast.AST) -> Iterator[ast.Constant]:
    """The string constants in an expression (both arms of `a if c else b`, a tuple's items)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            yield sub


def _field(node: ast.AST) -> str | None:
    """The vocabulary field an expression names (`t.state`, `ticket_kind`, `self.direction`)."""
    name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
    return next((f for f in FIELDS if name == f or name.endswith("_" + f)), None)


def _comparison(node: ast.Compare) -> Iterator[ast.Constant]:
    """Words compared with a state (any comparison: no other vocabulary uses these words) or
    with an expression naming a field of the vocabularies."""
    operands = [node.left, *node.comparators]
    fields = {f for operand in operands if (f := _field(operand))}
    allowed = set().union(*(FIELDS[f] for f in fields)) | STATES
    for operand in operands:
        for word in _words(operand):
            if word.value in allowed and (word.value or fields):
                yield word


def _call(node: ast.Call) -> Iterator[ast.Constant]:
    """Words passed as state=/kind=/resolution=/direction=, or as `enqueue`'s kind."""
    for kw in node.keywords:
        if kw.arg in FIELDS:
            yield from (w for w in _words(kw.value) if w.value in FIELDS[kw.arg])
    callee = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
    if callee == "enqueue" and len(node.args) > 3:
        yield from (w for w in _words(node.args[3]) if w.value in KINDS)


def _dict(node: ast.Dict) -> Iterator[ast.Constant]:
    """Words as the values of "state"/"kind"/"resolution"/"direction" keys."""
    for key, value in zip(node.keys, node.values, strict=True):
        if isinstance(key, ast.Constant) and key.value in FIELDS:
            yield from (w for w in _words(value) if w.value in FIELDS[key.value])


def _listing(node: ast.Tuple | ast.List | ast.Set) -> Iterator[ast.Constant]:
    """A literal list holding two or more words of one vocabulary."""
    items = [e for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    for vocabulary in VOCABULARIES:
        found = [e for e in items if e.value in vocabulary]
        if len(found) >= 2:
            yield from found
            return


def bare_words(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, word) of every bare vocabulary word in a module's tree, in line order."""
    found: dict[tuple[int, int], str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            words = _comparison(node)
        elif isinstance(node, ast.Call):
            words = _call(node)
        elif isinstance(node, ast.Dict):
            words = _dict(node)
        elif isinstance(node, ast.Tuple | ast.List | ast.Set):
            words = _listing(node)
        else:
            continue
        for word in words:
            found[(word.lineno, word.col_offset)] = word.value
    return [(line, word) for (line, _), word in sorted(found.items())]


def modules() -> list[Path]:
    """mailer/**/*.py but the excluded packages."""
    return [p for p in sorted(MAILER.rglob("*.py")) if not any(p.is_relative_to(e) for e in EXCLUDED)]


def test_no_bare_vocabulary_words_in_mailer() -> None:
    """No module of mailer/ spells a stored ticket state, kind, resolution, direction or outbox
    state as a string where the enum member belongs."""
    found = [
        f"{path.relative_to(ROOT)}:{line}: {word!r}"
        for path in modules()
        for line, word in bare_words(ast.parse(path.read_text(), str(path)))
    ]
    assert found == [], "bare vocabulary words (name the storage.vocabulary member):\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source",
    [
        'if t.state == "open": pass',
        'ok = row.state in ("pending", "deferred")',
        'late = "!" if ticket_kind == "complaint" else ""',
        'ok = m.direction == "out"',
        'add_ticket_event(s, event="closed", state="closed")',
        'add_message(s, direction="in", kind="followup" if x else "request")',
        'enqueue(s, office, None, "digest", why, out, now)',
        'settled = {"resolution": "spam", "closed_at": now}',
        'LEFT_OUT = ("spam", "duplicate")',
        'Change(TicketState.OPEN, "reopened", resolution="")',
    ],
)
def test_the_guard_finds_bare_words(source: str) -> None:
    """The guard flags each kind of place a stored word can be spelled out."""
    assert bare_words(ast.parse(source)) != []


@pytest.mark.parametrize(
    "source",
    [
        'log.info("mail_sent", reply="sent")',
        'if args.command == "report": pass',
        'renderer.render("digest", "id", context)',
        'arrow = "opened from" if direction == "from" else "followed by"',
        'WORDS = ("thanks", "request", "in", "kind")',
        "if t.state == TicketState.OPEN: pass",
        '"""Only `open` tickets are candidates."""',
    ],
)
def test_the_guard_leaves_ordinary_words(source: str) -> None:
    """Words that are not a stored value where they stand (log text, CLI commands, template names,
    docstrings, a word list) and enum members pass the guard."""
    assert bare_words(ast.parse(source)) == []
