"""docs/analytics.md says what a fresh demo shows; this loads a fresh demo (``pocare demo``'s
loader, history included, the monitor run at its end) and checks each statement between the
``demo-facts`` markers (POC-2, CMP-SITE, CMP-STAT). The statements are checked one by one: a
statement added to the docs without a check here fails the test."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pocare.analytics import comparability as cmp
from pocare.analytics.models import ComparabilityResult
from pocare.masterfile.models import MasterFileVersion
from pocare.quality.models import QualitySignal
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

DOC = Path(__file__).resolve().parents[2] / "docs" / "analytics.md"


def _facts() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"<!-- demo-facts[^>]*-->(.*?)<!-- /demo-facts -->", text, re.S)
    assert block, "docs/analytics.md lost its demo-facts block"
    return [" ".join(item.split()) for item in re.split(r"\n- ", "\n" + block.group(1).strip()) if item.strip()]


def test_the_demo_shows_what_docs_analytics_says(people):  # type: ignore[no-untyped-def]
    """POC-2 CMP-SITE CMP-STAT: every statement of docs/analytics.md's "What the demo shows" holds on a
    fresh demo, read from what the monitor stored."""
    from django.db import connection

    from pocare.demo import loader

    if connection.vendor != "sqlite":
        pytest.skip("checked once, on the embedded database that `make demo` uses (a 3-minute load)")
    loader.load(password=PASSWORD)
    v1 = MasterFileVersion.objects.get(product__code="CD19-CART", number=1)
    rows = list(ComparabilityResult.objects.filter(version=v1).select_related("site"))
    cells = {(r.site.code, r.attribute_id): r for r in rows}
    sites = {r.site.code for r in rows}
    attributes = {r.attribute_id for r in rows}
    gro = cells[("GRO", "car-positive")]
    others = [r for key, r in cells.items() if key != ("GRO", "car-positive")]
    gro_signals = set(QualitySignal.objects.filter(site__code="GRO", attribute_id="car-positive")
                      .values_list("rule", flat=True))
    checks = {
        "The matrix of v1 has 6 sites × 7 numeric attributes = 42 cells.":
            sites == {"MAD", "LIS", "MUC", "GRO", "MIL", "DUB"} and len(attributes) == 7 and len(rows) == 42,
        "GRO's CAR+ cells are *not equivalent*: the 90 % interval of the difference lies below zero and reaches "
        "past −margin (the demo's Groningen drifts low), and a signalling rule flags a current lot.":
            gro.status == cmp.NOT_EQUIVALENT and gro.cell["ci"][1] < 0 and gro.cell["ci"][0] < -gro.cell["margin"]
            and any(a["rule"] in cmp.SIGNAL_RULES for a in gro.cell["alarms"]),
        "At least 90 % of the other 41 cells are equivalent.":
            len(others) == 41 and sum(r.status == cmp.EQUIVALENT for r in others) >= 0.9 * 41,
        "The monitor raised a TOST signal for GRO's CAR+ and at least one chart-rule signal for it.":
            "tost" in gro_signals and bool(gro_signals & set(cmp.SIGNAL_RULES)),
        "No cell is *too few lots*: every site has at least 3 current lots.":
            all(r.status != cmp.TOO_FEW for r in rows),
    }
    assert _facts() == list(checks), "docs/analytics.md's demo facts and this test's checks differ"
    failed = [fact for fact, holds in checks.items() if not holds]
    found = {"GRO car-positive": (gro.status, gro.reason, gro.cell["alarms"]), "GRO signals": sorted(gro_signals),
             "statuses": sorted((r.site.code, r.attribute_id, r.status) for r in rows if r.status != cmp.EQUIVALENT)}
    assert not failed, (failed, found)
