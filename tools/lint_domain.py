"""Lint rules that know POCare's house rules (DESIGN.md), in the spirit of Zulip's custom checks.

1. Views, API modules, forms and commands only parse input and call services: no ORM writes
   (``.save(``, ``.create(``, ``.update(``, ``.delete(``, ``bulk_``) and no ``event_record``.
2. Nothing outside the ledger writes ledger rows directly (``Event(``, ``Signature.objects``).
3. No naive "now": ``datetime.now()`` without a zone, ``datetime.utcnow()``, ``date.today()``.
4. ``pocare.core`` (input bounds, safe rendering) sits below every app: it imports none of them.
5. A module of one app does not write another app's models: it calls that app's services, which
   record the event (read with ``ast``, see :func:`cross_app_writes`). The demo app and the demo
   loaders (``demo.py``, ``history.py``) are the demo's business and are not checked here.

6. An import inside a function says why it is not at module level (a comment on its line, or on
   the line above its group of imports): at module level the layers are visible to the import
   contracts and to a reader, so a late import needs a reason (docs/architecture.md).

A line may opt out with ``# lint: allow <reason>``; the reason is required.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src" / "pocare"
THIN = re.compile(r"(^|/)(views|api|forms)\.py$|/management/commands/")
ORM_WRITE = re.compile(r"\.(save|create|update|delete|bulk_create|bulk_update|get_or_create|update_or_create)\(")
LEDGER_WRITE = re.compile(r"\b(Event|Signature|ChainHead)\(|\b(Event|Signature|ChainHead)\.objects\.(create|bulk)")
NAIVE_NOW = re.compile(r"datetime\.(utcnow|now)\(\s*\)|date\.today\(\)")
APP_IMPORT = re.compile(r"^\s*(from|import)\s+pocare\.(?!core\b)\w+")
ALLOWED_ORM_WORDS = ("request.session", "hashlib", "messages.")
ALLOW = re.compile(r"# lint: allow \S")

#: Manager, queryset and row methods that write. ``save``, ``delete`` and ``update`` are also
#: followed to a name bound from another app's model (ROW_WRITES).
WRITES = frozenset({"create", "update", "delete", "bulk_create", "bulk_update", "get_or_create",
                    "update_or_create", "save", "create_user", "create_superuser"})
ROW_WRITES = frozenset({"save", "delete", "update"})
DEMO_FILES = frozenset({"demo.py", "history.py"})


def _dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for a name or a chain of attributes on a name; None for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    return None


def _chain_start(node: ast.expr) -> str | None:
    """The dotted name a call chain starts at: ``Site`` for ``Site.objects.filter(x).update``."""
    while True:
        dotted = _dotted(node)
        if dotted is not None:
            return dotted
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Attribute | ast.Subscript):
            node = node.value
        else:
            return None


def _imported_names(tree: ast.Module) -> dict[str, str]:
    """Local name → the dotted name it was imported as, for every import of the module (any depth)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
        elif isinstance(node, ast.Import):
            for a in node.names:
                top = a.name.split(".")[0]
                names[a.asname or top] = a.name if a.asname else top
    return names


class _CrossAppWrites(ast.NodeVisitor):
    """Finds writes to another app's models: through the model (``Y.objects….update(``,
    ``Y(…).save()``) and through a name the same function bound from it (``x = Y.objects.get(…)``,
    a ``for`` over ``Y.objects…``, a parameter annotated ``Y``, then ``x.save()``)."""

    def __init__(self, names: dict[str, str], app: str) -> None:
        self.names, self.app = names, app
        self.scopes: list[dict[str, str | None]] = [{}]
        self.found: list[tuple[int, int, str, str]] = []  # first line, last line, what, model

    def model(self, dotted: str | None) -> str | None:
        """``app.Model`` when ``dotted`` names a model class of another app, else None."""
        if dotted is None:
            return None
        first, _, rest = dotted.partition(".")
        if first not in self.names:
            return None
        parts = [*self.names[first].split("."), *filter(None, rest.split("."))]
        if len(parts) < 4 or parts[0] != "pocare" or parts[2] != "models" or not parts[3][:1].isupper():
            return None
        return None if parts[1] == self.app else f"{parts[1]}.{parts[3]}"

    def annotated_model(self, annotation: ast.expr | None) -> str | None:
        if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
            try:
                annotation = ast.parse(annotation.value, mode="eval").body
            except SyntaxError:
                return None
        for node in ast.walk(annotation) if annotation is not None else ():
            found = self.model(_dotted(node)) if isinstance(node, ast.Name | ast.Attribute) else None
            if found:
                return found
        return None

    def bind(self, target: ast.expr, model: str | None) -> None:
        if isinstance(target, ast.Name):
            self.scopes[-1][target.id] = model
        elif isinstance(target, ast.Tuple | ast.List):
            for element in target.elts:
                self.bind(element, None)

    def bound(self, name: str) -> str | None:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return None

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for decorator in node.decorator_list:
            self.visit(decorator)
        arguments = node.args
        every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs,
                 *filter(None, (arguments.vararg, arguments.kwarg))]
        self.scopes.append({a.arg: self.annotated_model(a.annotation) for a in every})
        for statement in node.body:
            self.visit(statement)
        self.scopes.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self.bind(target, self.model(_chain_start(node.value)))

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
        model = self.model(_chain_start(node.value)) if node.value is not None else None
        self.bind(node.target, model or self.annotated_model(node.annotation))

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self.bind(node.target, self.model(_chain_start(node.iter)))
        for statement in [*node.body, *node.orelse]:
            self.visit(statement)

    visit_AsyncFor = visit_For

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in WRITES:
            receiver = func.value
            row = self.bound(receiver.id) if isinstance(receiver, ast.Name) and func.attr in ROW_WRITES else None
            if row is not None:
                self.report(node, f"{_dotted(func)}() writes a {row} row", row)
            elif (model := self.model(_chain_start(receiver))) is not None:
                self.report(node, f".{func.attr}() writes {model}", model)
        self.generic_visit(node)

    def report(self, node: ast.Call, what: str, model: str) -> None:
        self.found.append((node.lineno, node.end_lineno or node.lineno, what, model))


def cross_app_writes(source: str, app: str) -> list[tuple[int, str]]:
    """(line, problem) for each write in ``source`` (a module of ``app``) to a model of another app
    outside that app's services, unless a line of the call says ``# lint: allow <reason>``."""
    tree = ast.parse(source)
    finder = _CrossAppWrites(_imported_names(tree), app)
    finder.visit(tree)
    lines = source.splitlines()
    out = []
    for first, last, what, model in finder.found:
        if not any(ALLOW.search(line) for line in lines[first - 1:last]):
            owner = model.split(".")[0]
            out.append((first, f"{what} outside the {owner} app; call a {owner} service, which records the event"))
    return out


def unexplained_late_imports(source: str) -> list[int]:
    """Lines of imports inside a function with no comment saying why: neither on the import's line
    nor on the line above its group of consecutive imports."""
    lines = source.splitlines()
    found: list[int] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if in_function and isinstance(child, (ast.Import, ast.ImportFrom)):
                above = child.lineno - 2
                while above >= 0 and lines[above].strip().startswith(("from ", "import ")):
                    above -= 1
                if "#" not in lines[child.lineno - 1] and not (above >= 0 and lines[above].strip().startswith("#")):
                    found.append(child.lineno)
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    visit(ast.parse(source), False)
    return found


def _app_modules() -> Iterator[tuple[Path, str]]:
    """Each module whose cross-app writes are checked, with its app ('' at the project root)."""
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if "migrations" in parts or parts[0] == "demo" or path.name in DEMO_FILES:
            continue
        yield path, parts[0] if len(parts) > 1 else ""


def check() -> list[str]:
    problems = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if "/migrations/" in f"/{rel}":
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if ALLOW.search(line):
                continue
            code = line.split("#", 1)[0]
            where = f"src/pocare/{rel}:{n}"
            if THIN.search(rel) and ORM_WRITE.search(code) and not any(w in code for w in ALLOWED_ORM_WORDS):
                problems.append(f"{where}: views, API, forms and commands call services; no ORM writes here")
            if THIN.search(rel) and "event_record(" in code:
                problems.append(f"{where}: ledger events are written by services, not by {path.name}")
            if not rel.startswith("ledger/") and LEDGER_WRITE.search(code):
                problems.append(f"{where}: only the ledger writes ledger rows")
            if rel.startswith("core/") and APP_IMPORT.search(code):
                problems.append(f"{where}: pocare.core sits below every app and imports none of them")
            if NAIVE_NOW.search(code):
                problems.append(f"{where}: naive time; use django.utils.timezone.now()")
    for path, app in _app_modules():
        rel = path.relative_to(ROOT).as_posix()
        for n, problem in cross_app_writes(path.read_text(encoding="utf-8"), app):
            problems.append(f"src/pocare/{rel}:{n}: {problem}")
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if "/migrations/" not in f"/{rel}":
            for n in unexplained_late_imports(path.read_text(encoding="utf-8")):
                problems.append(f"src/pocare/{rel}:{n}: an import inside a function says why (a comment) "
                                "or moves to module level")
    return problems


if __name__ == "__main__":
    found = check()
    for p in found:
        print(p)
    sys.exit(1 if found else 0)
