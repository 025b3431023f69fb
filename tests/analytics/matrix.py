"""How the generated permission test (tests/test_permission_matrix.py) names analytics objects: a
site, by its code (the comparability pages are network pages; site people hold no ANALYTICS_VIEW)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

OBJECTS: dict[str, Callable[[str], dict[str, Any]]] = {
    "analytics:site": lambda site: {"code": site},
    "api-analytics-site": lambda site: {"code": site},
}
