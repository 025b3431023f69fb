"""Lint rules that know POCare's house rules (DESIGN.md), in the spirit of Zulip's custom checks.

1. Views, API modules, forms and commands only parse input and call services: no ORM writes
   (``.save(``, ``.create(``, ``.update(``, ``.delete(``, ``bulk_``) and no ``event_record``.
2. Nothing outside the ledger writes ledger rows directly (``Event(``, ``Signature.objects``).
3. No naive "now": ``datetime.now()`` without a zone, ``datetime.utcnow()``, ``date.today()``.
4. ``pocare.core`` (input bounds, safe rendering) sits below every app: it imports none of them.

A line may opt out with ``# lint: allow <reason>``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src" / "pocare"
THIN = re.compile(r"(^|/)(views|api|forms)\.py$|/management/commands/")
ORM_WRITE = re.compile(r"\.(save|create|update|delete|bulk_create|bulk_update|get_or_create|update_or_create)\(")
LEDGER_WRITE = re.compile(r"\b(Event|Signature|ChainHead)\(|\b(Event|Signature|ChainHead)\.objects\.(create|bulk)")
NAIVE_NOW = re.compile(r"datetime\.(utcnow|now)\(\s*\)|date\.today\(\)")
APP_IMPORT = re.compile(r"^\s*(from|import)\s+pocare\.(?!core\b)\w+")
ALLOWED_ORM_WORDS = ("request.session", "hashlib", "messages.")


def check() -> list[str]:
    problems = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if "/migrations/" in f"/{rel}":
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "# lint: allow" in line:
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
    return problems


if __name__ == "__main__":
    found = check()
    for p in found:
        print(p)
    sys.exit(1 if found else 0)
