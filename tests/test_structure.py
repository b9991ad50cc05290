"""The shape of the package: no import cycle (lazy imports count), the policy grammar read in one module, no
environment's name as a literal outside `prefkit/envs/` (formats name their benchmark dialects in
`prefkit/formats/`), and one stage list."""

from __future__ import annotations

import ast
from pathlib import Path

from prefkit.envs.registry import ENVIRONMENTS

PACKAGE = Path(__file__).resolve().parents[1] / "prefkit"


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """Every prefkit module `path` imports anywhere (top level, inside functions, under TYPE_CHECKING)."""

    def known(target: str) -> str | None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {known(alias.name) for alias in node.names if alias.name.startswith("prefkit")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            if base.startswith("prefkit"):
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    found.add(full if full in modules else known(base))
    return found - {None, name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_among_prefkit_modules_lazy_imports_included():
    modules = _modules()
    graph = {name: _imports(path, name, modules) & set(modules) for name, path in modules.items()}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _string_constants(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


def test_the_policy_grammar_is_read_in_one_module():
    reader = PACKAGE / "policies" / "spec.py"
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {value!r}"
        for path in PACKAGE.rglob("*.py")
        if path != reader
        for line, value in _string_constants(path)
        if value.startswith(("openai:", "replay:")) and " " not in value  # a prefix in code, not in a help text
    ]
    assert found == []


def test_no_environment_name_is_a_literal_outside_envs():
    allowed = (PACKAGE / "envs", PACKAGE / "formats")
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {value!r}"
        for path in PACKAGE.rglob("*.py")
        if not path.is_relative_to(allowed[0]) and not path.is_relative_to(allowed[1])
        for line, value in _string_constants(path)
        if value in ENVIRONMENTS
    ]
    assert found == []


def test_test_modules_import_helpers_not_other_test_modules():
    tests = Path(__file__).resolve().parent
    found = []
    for path in tests.rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[-1].startswith("test_"):
                found.append(f"{path.relative_to(tests)}: from {node.module}")
    assert found == []


def test_every_test_has_a_time_limit():
    import tomllib

    settings = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert 0 < int(settings["timeout"]) <= 1200
