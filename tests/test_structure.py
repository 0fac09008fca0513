"""The shape of the package (issue 22): no import cycle, small modules and functions, one
owner per class name, and function-level imports only where a comment says why."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lstm_report"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
# Imported inside functions on purpose: heavy or optional packages a run may not need.
HEAVY = {
    "keras",
    "tensorflow",
    "h5py",
    "onnx",
    "distributed",
    "mlflow",
    "matplotlib",
    "torch",
    "safetensors",
    "tflite",
    "flatbuffers",
    "IPython",
    "dask",
    "PIL",
    "onnxruntime",
    "google",
}  # google.protobuf: onnx's
# The CLI and the package root import stages lazily: `lstm-report --help` and
# `import lstm_report` must not pay for numpy.
LAZY_STAGES = {"lstm_report", "lstm_report.cli", "lstm_report.cli_commands", "lstm_report.__main__"}


def _modules() -> dict[str, tuple[Path, ast.Module]]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = (path, ast.parse(path.read_text(encoding="utf-8")))
    return out


MODULES = _modules()


def _imports(tree: ast.Module) -> list[tuple[ast.stmt, list[str]]]:
    """Every import statement with the lstm_report modules (or externals) it names."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{a.name}" for a in node.names]
            found.append((node, [n if n in MODULES else node.module for n in names]))
        elif isinstance(node, ast.Import):
            found.append((node, [a.name for a in node.names]))
    return found


def _graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for name, (_, tree) in MODULES.items():
        for _, targets in _imports(tree):
            edges[name].update(t for t in targets if t in MODULES and t != name)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(set(edges) | {w for ws in edges.values() for w in ws}):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_has_no_cycle() -> None:
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    # The test above cannot pass by accident: a two-module loop is found.
    assert _cycles(defaultdict(set, {"a": {"b"}, "b": {"a"}, "c": {"a"}})) == [["a", "b"]]


def test_function_level_imports_are_heavy_packages_with_a_reason() -> None:
    problems = []
    for name, (path, tree) in MODULES.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        top = {id(n) for n in tree.body}
        for node in tree.body:  # `if TYPE_CHECKING:` and `try:` blocks count as the top
            if isinstance(node, (ast.If, ast.Try)):
                top.update(
                    id(n) for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))
                )
        for node, targets in _imports(tree):
            if id(node) in top:
                continue
            roots = {t.split(".")[0] for t in targets}
            if roots <= {"lstm_report"} and name in LAZY_STAGES:
                continue
            if not roots <= HEAVY:
                problems.append(
                    f"{path.name}:{node.lineno} imports {', '.join(targets)} in a function"
                )
                continue
            before = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
            if "#" not in lines[node.lineno - 1] and not before.startswith("#"):
                problems.append(
                    f"{path.name}:{node.lineno} lazy import of {targets[0]} without a reason"
                )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_and_functions_are_small(name: str) -> None:
    path, tree = MODULES[name]
    assert len(path.read_text(encoding="utf-8").splitlines()) <= MAX_MODULE_LINES
    long = [
        f"{n.name} ({n.end_lineno - n.lineno + 1} lines)"
        for n in ast.walk(tree)
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
        and (n.end_lineno or n.lineno) - n.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


def test_no_two_classes_share_a_name() -> None:
    where: dict[str, list[str]] = defaultdict(list)
    for name, (_, tree) in MODULES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                where[node.name].append(name)
    assert {k: v for k, v in where.items() if len(v) > 1} == {}
