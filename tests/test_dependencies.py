"""The pinned sets match what the code imports: a server installs requirements/base.txt only, so every
third-party module that src/ imports must come from a distribution pinned there; test and benchmark
references (statsmodels, pandas) stay out of it."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pinned(lock: str) -> set[str]:
    text = (ROOT / "requirements" / lock).read_text(encoding="utf-8")
    return {_normal(m.group(1)) for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", text, re.MULTILINE)}


def _third_party_imports(folder: Path) -> set[str]:
    """Top-level names of absolute imports anywhere in the folder's modules, less stdlib and pocare."""
    names: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"pocare", "__future__"}


def test_everything_src_imports_is_pinned_in_the_base_set():
    """A server built from requirements/base.txt can import every module of src/."""
    distributions = packages_distributions()
    base = _pinned("base.txt")
    missing = {name: distributions.get(name) for name in _third_party_imports(ROOT / "src")
               if not {_normal(d) for d in distributions.get(name, [])} & base}
    assert missing == {}


def test_test_references_are_not_in_the_base_set():
    """statsmodels and pandas check the analytics in tests and benchmarks; a server does not need them."""
    base, dev = _pinned("base.txt"), _pinned("dev.txt")
    assert not {"statsmodels", "pandas"} & base
    assert {"statsmodels", "pandas", "hypothesis"} <= dev
