"""How the generated permission test (tests/test_permission_matrix.py) names the cost of a batch at a
site: a batch of that site (the manufacturing matrix's batch in progress)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.manufacturing.matrix import OBJECTS as MANUFACTURING

OBJECTS: dict[str, Callable[[str], dict[str, Any]]] = {"costs:batch": MANUFACTURING["manufacturing:batch"]}
