"""The shape of the code base: small modules, no import cycle in the kernel, and a kernel that imports no plugin."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KERNEL = ROOT / "core" / "llm_adapters"
SOURCES = [KERNEL, *sorted(ROOT.glob("llm_adapters_*/src")), *sorted(ROOT.glob("plugins/*/src"))]
MAX_LINES = 400


def _modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module under the package directory ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _module_level_imports(name: str, path: Path, is_package: bool) -> set[str]:
    """Modules imported at module level (not inside functions, not under ``if TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    package = name if is_package else name.rpartition(".")[0]

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)] if node.level > 1 else anchor
                    base = ".".join([*anchor, base]) if base else ".".join(anchor)
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
                visit(node.body + node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)

    visit(tree.body)
    return found


def test_no_module_is_over_400_lines() -> None:
    long = []
    for src in SOURCES:
        for path in src.rglob("*.py"):
            n = len(path.read_text(encoding="utf-8").splitlines())
            if n > MAX_LINES:
                long.append(f"{path.relative_to(ROOT)} ({n} lines)")
    assert not long, f"split these modules by job: {long}"


def test_the_kernel_has_no_import_cycle() -> None:
    modules = _modules(KERNEL)
    graph = {
        name: {m for m in _module_level_imports(name, path, path.name == "__init__.py") if m in modules and m != name}
        for name, path in modules.items()
    }
    # a package's __init__ may import its own submodules; the cycle that matters runs between modules
    for name in graph:
        graph[name] = {m for m in graph[name] if not (m.startswith(name + ".") and modules[name].name == "__init__.py")}
    cycles = []

    def walk(node: str, stack: list[str], done: set[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt in stack:
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in done:
                walk(nxt, [*stack, nxt], done)
        done.add(node)

    done: set[str] = set()
    for start in sorted(graph):
        if start not in done:
            walk(start, [start], done)
    assert not cycles, cycles


def test_the_kernel_imports_no_plugin() -> None:
    offenders = []
    for path in KERNEL.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.startswith("llm_adapters_")]
    assert not offenders, offenders
