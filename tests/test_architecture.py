"""The shape of the code, checked: dependencies point one way, no import cycles, the question
is parsed in one place, and Chinese-language knowledge lives in the language packages."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_HAN_ESCAPE = re.compile(r"\\u(?:[3-9][0-9a-fA-F]{3}|[fF][9aA][0-9a-fA-F]{2})")


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources(*packages: str) -> dict[str, Path]:
    return {_module(p): p for package in packages for p in sorted((ROOT / package).rglob("*.py"))}


def _imports(path: Path) -> list[tuple[str, tuple[str, ...]]]:
    """(module, names) of every import in the file, those under ``if TYPE_CHECKING:`` aside."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for child in node.body for n in ast.walk(child))
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, tuple(a.name for a in node.names)))
        elif isinstance(node, ast.Import):
            found.extend((a.name, ()) for a in node.names)
    return found


def _graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports (``from pkg import mod`` counts as pkg.mod)."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for module, names in _imports(path):
            # the module itself, and each name of it that is a module (from rag.lang import tables)
            targets = {module, *(f"{module}.{n}" for n in names)}
            edges.update(t for t in targets if t in modules and t != name)
        graph[name] = edges
    return graph


def test_the_library_imports_neither_the_server_nor_the_eval_harness() -> None:
    for name, path in _sources("rag").items():
        outside = [m for m, _ in _imports(path) if m.split(".")[0] in ("api", "eval")]
        assert not outside, f"{name} imports {outside}: rag is the library, api and eval use it"


def test_there_are_no_import_cycles() -> None:
    graph = _graph(_sources("rag", "api"))
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


# What reads a question's text: its language's question rules, the parsers of compared events
# and of "X当天", the date grammar's question dates, the names and English words it gives, and
# the follow-up rewrite. Only the analysis (rag.answer.analysis) may call them.
_QUESTION_READERS = {
    "rag.lang.zh.question": None,  # every name
    "rag.lang.en.question": None,
    "rag.lang.zh.events": {"parse_comparison", "parse_same_day"},
    "rag.lang.zh.dates": {"question_date", "resolve_relative"},
    "rag.answer.entities": {"name_candidates"},
    "rag.index.lexicon": {"english_words"},
    "rag.answer.conversation": {"standalone_question", "validate_history"},
}
_ANALYSIS = "rag.answer.analysis"


def test_the_question_is_parsed_in_one_place() -> None:
    for name, path in _sources("rag", "api", "eval").items():
        if name == _ANALYSIS or name in _QUESTION_READERS or name.startswith("rag.lang."):
            continue
        for module, names in _imports(path):
            if module not in _QUESTION_READERS:
                continue
            readers = _QUESTION_READERS[module]
            used = set(names) if readers is None else set(names) & readers
            assert not used, (
                f"{name} reads the question with {module}: {sorted(used)}; "
                f"read what {_ANALYSIS} found instead (QuestionInfo on the request)"
            )


def _literals(path: Path) -> list[tuple[int, str]]:
    """String literals holding Han characters (as text or as \\u escapes), docstrings and option help aside."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                docstrings.add(id(body[0].value))
    for node in ast.walk(tree):  # what documents an option (description=, help=) is prose too
        if isinstance(node, ast.keyword) and node.arg in ("description", "help"):
            docstrings.update(id(n) for n in ast.walk(node.value))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            written = ast.get_source_segment(source, node) or ""
            if _HAN.search(node.value) or _HAN_ESCAPE.search(written):
                found.append((node.lineno, node.value[:40]))
    return found


def test_chinese_rules_live_in_the_language_package() -> None:
    holding = {}
    for name, path in _sources("rag", "api").items():
        if name == "rag.lang" or name.startswith("rag.lang."):
            continue
        if found := _literals(path):
            holding[name] = found[:3]
    assert not holding, f"Chinese literals outside rag/lang (move them into rag/lang/zh): {holding}"
