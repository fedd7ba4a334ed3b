"""The shape of bot/: no import circle (lazy imports inside functions count) and no module over
600 lines, so that a newcomer can own one package without reading the others."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import ROOT

MAX_LINES = 600


def _modules() -> dict[Path, str]:
    root = ROOT / "bot"
    return {p: ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            for p in root.rglob("*.py")}


def import_graph() -> dict[str, set[str]]:
    files = _modules()
    known = set(files.values())

    def resolve(name: str) -> str | None:
        while name:
            if name in known:
                return name
            name = name.rpartition(".")[0]
        return None

    graph: dict[str, set[str]] = {}
    for path, module in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                names = [f"{base}.{alias.name}" for alias in node.names] + [base]
            for name in names:
                target = resolve(name)
                if target and target != module:
                    deps.add(target)
        graph[module] = deps
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_circles_are_found_when_they_exist():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_bot_has_no_import_circle():
    assert circles(import_graph()) == []


def test_no_module_is_over_600_lines():
    long = {str(p.relative_to(ROOT)): n for p in _modules()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_the_core_never_imports_a_platform_library():
    graph_files = _modules()
    platform = ("telegram", "aiohttp")
    offenders = []
    for path, module in graph_files.items():
        if module.startswith(("bot.channels.telegram", "bot.channels.zalo_bot", "bot.channels.zalo_oa", "bot.app.web",
                              "bot.dashboard.http")):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            offenders += [f"{module}: {n}" for n in names if n.split(".")[0] in platform]
    assert offenders == []


_WRITE = re.compile(r"\b(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|UPDATE|DELETE\s+FROM|REPLACE\s+INTO)\s+([a-z_]+)\b")


def table_writers() -> dict[str, set[str]]:
    """Table → the modules whose SQL writes it (INSERT / UPDATE / DELETE / REPLACE in a string)."""
    writers: dict[str, set[str]] = {}
    for path, module in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for table in _WRITE.findall(node.value):
                    writers.setdefault(table, set()).add(module)
    return writers


def test_table_writers_are_found():
    writers = table_writers()
    assert writers["tickets"] == {"bot.handoff.tickets"}
    assert "bot.delivery.replies" in writers["replies"]


def test_each_table_has_one_writer():
    """Each table's rows are written by its owner module alone; others call it."""
    shared = {t: sorted(m) for t, m in table_writers().items() if len(m) > 1}
    assert shared == {}
