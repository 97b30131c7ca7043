"""The tree's shape: no import cycles, each package imports only the layers below it, and no
module grows past what a newcomer reads in one sitting. Read from the source with `ast`, so
imports under `TYPE_CHECKING` and inside functions count too."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("mailer", "storage")
MAX_LINES = 400

# The mail's path, lowest layer first: a package may import its own layer and those before it.
# Foundation modules sit directly in mailer/ (clock, errors, log, metrics, model, tls, settings).
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"storage"}),
    frozenset({"mailer.foundation"}),
    frozenset({"mailer.intake", "mailer.decide"}),
    frozenset({"mailer.delivery"}),
    frozenset({"mailer.pipeline", "mailer.timed"}),
    frozenset({"mailer.daemon"}),
    frozenset({"mailer.operator", "mailer.__main__"}),
)
FOUNDATION = frozenset({"backoff", "clock", "errors", "log", "metrics", "model", "tls", "settings"})


def module_files() -> Iterator[tuple[str, Path]]:
    """(dotted name, path) of every module of the project's packages, migrations aside."""
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if "migrations" in relative.parts:
                continue
            parts = list(relative.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts), path


def import_graph() -> dict[str, set[str]]:
    """Module → the project's modules it imports (a `from package import name` counts as the
    submodule `package.name` when there is one, else as the package)."""
    files = dict(module_files())
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    targets.add(sub if sub in files else node.module)
        graph[name] = {t for t in targets if t in files and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def layer_of(module: str) -> int:
    """The index in LAYERS of the package a module belongs to."""
    parts = module.split(".")
    if parts[0] == "storage":
        key = "storage"
    elif len(parts) == 1 or parts[1] in FOUNDATION:
        key = "mailer.foundation"
    else:
        key = f"mailer.{parts[1]}"
    for number, layer in enumerate(LAYERS):
        if key in layer:
            return number
    raise AssertionError(f"{module}: its package {key} is in no layer of tests/test_layout.LAYERS")


def test_no_import_cycles() -> None:
    """No module of mailer/ or storage/ imports itself through others."""
    assert cycles(import_graph()) == []


def test_packages_import_only_the_layers_below() -> None:
    """storage never imports mailer; intake/decide never import delivery, the pipeline, the timed
    jobs, the daemon or the operator commands; and so on up LAYERS."""
    upward = [
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        for target in sorted(targets)
        if layer_of(target) > layer_of(module)
    ]
    assert upward == []


def test_no_module_over_the_line_limit() -> None:
    """Every module of mailer/ and storage/ (migrations aside) is at most MAX_LINES lines."""
    long = {
        name: count
        for name, path in module_files()
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}
