"""The shape of the code: layers that import only downwards (import-linter), no import cycles (counting imports
inside functions), lazy imports only where they keep torch or Textual out of a light path, and short modules."""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "rnntui"
MAX_LINES = 450


def lint_imports(cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    lint = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    assert Path(lint).exists(), "import-linter is a test dependency: pip install -e '.[test]'"
    env = {**os.environ, "PYTHONPATH": str(pythonpath)} if pythonpath else None
    return subprocess.run([lint, "--no-cache"], capture_output=True, text=True, cwd=cwd, env=env)


def test_every_import_linter_contract_is_kept():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]


def test_an_upward_import_breaks_the_layers_contract(tmp_path):
    """The contract can fail: the same tree with one upward import (the core importing the engine) is refused."""
    shutil.copytree(PACKAGE, tmp_path / "rnntui", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    model = tmp_path / "rnntui" / "core" / "model.py"
    model.write_text(model.read_text() + "\nimport rnntui.engine  # noqa\n")
    result = lint_imports(tmp_path, pythonpath=tmp_path)
    assert result.returncode != 0
    assert "rnntui.core is not allowed to import rnntui.engine" in result.stdout


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def rnntui_imports(name: str, path: Path) -> list[tuple[str, ast.AST, bool]]:
    """(imported rnntui module, node, inside a function?) for every import in a module."""
    known = modules()
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            targets: list[str] = []
            if isinstance(child, ast.Import):
                targets = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - child.level + 1] + [base]).strip(".")
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in child.names]
            for target in targets:
                if target.split(".")[0] == "rnntui" and target != "rnntui":
                    found.append((target, child, in_function))
            visit(child, inner)

    visit(tree, False)
    return found


def test_no_import_cycles_counting_imports_inside_functions():
    graph = {name: {t for t, _, _ in rnntui_imports(name, path)} for name, path in modules().items()}
    index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]

    def connect(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                connect(w)
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
            if len(component) > 1 or v in graph.get(v, ()):
                cycles.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            connect(v)
    assert cycles == []


def test_imports_inside_functions_say_why_they_are_lazy():
    """An rnntui import inside a function is only there to keep torch or Textual out of a light path, and its
    line (or the one above) says so with a `# lazy:` comment."""
    unexplained = []
    for name, path in modules().items():
        lines = path.read_text().splitlines()
        for target, node, in_function in rnntui_imports(name, path):
            if in_function and not any("# lazy:" in lines[i] for i in (node.lineno - 1, node.lineno - 2)
                                       if i >= 0):
                unexplained.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {target}")
    assert unexplained == []


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_longer_than_it_can_be_read(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_the_core_and_the_corpora_never_load_the_ui():
    names = [n for n in modules() if n.startswith(("rnntui.core", "rnntui.corpora"))]
    probe = (f"import sys, importlib; [importlib.import_module(m) for m in {names!r}]; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"
