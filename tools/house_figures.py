"""The figures of the house (docs/architecture.md): import cycles between apps, imports hidden in
functions, the longest functions. Read from the source with ``ast``; nothing is imported.

    python tools/house_figures.py [SRC_DIR]        # default: src/pocare

Counts module-level imports for the cycle (as the issue that introduced the layers did) and skips
imports under ``if TYPE_CHECKING:``, which are annotations only.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

DEFAULT = Path(__file__).resolve().parent.parent / "src" / "pocare"


def _imports(tree: ast.Module) -> list[tuple[ast.ImportFrom | ast.Import, bool]]:
    """Each import statement with whether it sits inside a function (TYPE_CHECKING blocks skipped)."""
    found: list[tuple[ast.ImportFrom | ast.Import, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append((child, in_function))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    visit(tree, False)
    return found


def _target_app(node: ast.Import | ast.ImportFrom, apps: set[str]) -> str | None:
    names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
        [node.module, *(f"{node.module}.{a.name}" for a in node.names)] if node.module and not node.level else [])
    for name in names:
        parts = name.split(".")
        if parts[0] == "pocare" and len(parts) > 1 and parts[1] in apps:
            return parts[1]
    return None


def _largest_cycle(edges: dict[str, set[str]], apps: set[str]) -> list[str]:
    """The largest strongly connected component of the app graph (Tarjan), as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            components.append(component)

    for app in sorted(apps):
        if app not in index:
            connect(app)
    return sorted(max(components, key=len))


def figures(root: Path) -> dict[str, object]:
    apps = {p.name for p in root.iterdir() if (p / "__init__.py").exists()}
    edges: dict[str, set[str]] = defaultdict(set)
    late: list[str] = []
    lengths: list[tuple[int, str]] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if "migrations" in rel.parts or len(rel.parts) < 2 or rel.parts[0] not in apps:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node, in_function in _imports(tree):
            target = _target_app(node, apps)
            if target is None or target == rel.parts[0]:
                continue
            if in_function:
                late.append(f"{rel}:{node.lineno}")
            else:
                edges[rel.parts[0]].add(target)
        lengths += [(n.end_lineno - n.lineno + 1, f"{rel}:{n.name}") for n in ast.walk(tree)
                    if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno]
    cycle = _largest_cycle(edges, apps)
    return {"apps": len(apps), "largest_cycle": cycle if len(cycle) > 1 else [],
            "late_cross_app_imports": late, "longest": sorted(lengths, reverse=True)[:5],
            "over_60_lines": sum(1 for n, _ in lengths if n > 60)}


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    f = figures(root)
    cycle = f["largest_cycle"]
    assert isinstance(cycle, list)
    print(f"apps (packages under {root.name}/): {f['apps']}")
    print(f"apps in the largest cycle of module-level imports: {len(cycle)} {' '.join(cycle)}".rstrip())
    late = f["late_cross_app_imports"]
    assert isinstance(late, list)
    print(f"imports of another app inside a function: {len(late)}")
    for where in late:
        print(f"  {where}")
    print(f"functions over 60 lines: {f['over_60_lines']}; the longest:")
    for length, name in f["longest"]:  # type: ignore[attr-defined]
        print(f"  {length:4d}  {name}")


if __name__ == "__main__":
    main()
