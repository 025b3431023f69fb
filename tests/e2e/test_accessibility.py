"""Accessibility: axe-core, vendored from npm (tests/e2e/vendor/axe-core), run in headless Chromium on
the main pages of every role, with real records on them (a batch in progress with a step awaiting
verification, a batch through QC review waiting for the QP, a deviation, a change request).

One test logs each role in once and walks its pages in the same tab, so the walk stays short (about
30 pages). It fails on any *serious* or *critical* violation and prints each one (rule, impact,
elements, axe's summary of what to fix); the counts per page and impact, minor ones included, are
printed too (``pytest -s``) — docs/accessibility.md keeps them.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from playwright.sync_api import Page

from tests.browser import browser_login as _login
from tests.conftest import PASSWORD

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
AXE_VERSION = "4.14.1"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
BLOCKING = ("serious", "critical")
#: Duplicate ids: axe 4.14 keeps ``duplicate-id`` and ``duplicate-id-active`` off by default (deprecated
#: for WCAG 2.2) and sends ``duplicate-id-aria`` to review; a label or ``aria-describedby`` that names a
#: duplicated id points at the wrong form's field, so the walk turns them on and counts them as serious.
DUPLICATE_ID_RULES = ("duplicate-id", "duplicate-id-active", "duplicate-id-aria")

RUN_AXE = """async () => {
  const result = await window.axe.run(document, {
    resultTypes: ["violations", "incomplete"],
    rules: {"duplicate-id": {enabled: true}, "duplicate-id-active": {enabled: true}},
  });
  const duplicates = result.incomplete.filter(v => v.id === "duplicate-id-aria");
  return {version: window.axe.version, violations: result.violations.concat(duplicates).map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(" "), summary: n.failureSummary || n.any.map(c => c.message).join("; ")}))}))};
}"""


def test_the_vendored_axe_core_is_the_published_file():
    """The axe.min.js the browser tests run is the one published on npm (its sha256 is written in the
    README beside it and here), with its MPL-2.0 licence beside it."""
    assert hashlib.sha256(AXE.read_bytes()).hexdigest() == AXE_SHA256
    readme = (AXE.parent / "README.md").read_text(encoding="utf-8")
    assert AXE_SHA256 in readme and AXE_VERSION in readme
    assert "Mozilla Public License, version 2.0" in (AXE.parent / "LICENSE").read_text(encoding="utf-8")
    assert f"axe v{AXE_VERSION}" in AXE.read_text(encoding="utf-8")[:200]


def _records() -> dict[str, Any]:
    """The records the pages show, made through the services: a batch in progress at Madrid whose
    first step (second-person verified) was recorded by the operator and awaits the manager; a second
    batch completed, with results, trail review, review by exception and QC review (the QP's); a
    deviation at Madrid; and a change request on the master file."""
    from pocare.manufacturing import services
    from tests.manufacturing import helpers as h
    from tests.masterfile.helpers import raise_change
    from tests.quality.helpers import deviation
    from tests.release import helpers as rh

    ready = rh.ready_batch("MAD")
    running = h.started_batch("MAD")
    operator = h.user("operator.mad")
    _, step = services._find(running, "receipt-identity")
    services.step_record(
        actor=operator,
        batch=running,
        step_id=step["id"],
        values=h.good_values(step),
        materials=h.material_lots(running, step),
        credentials=h.creds(operator),
    )
    change = raise_change(actor="qa2", sites=("MAD",))
    return {
        "ready": ready.reference,
        "running": running.reference,
        "deviation": deviation("MAD").reference,
        "change": change.pk,
        "version": change.version.pk,
        "person": operator.pk,
    }


def _pages(r: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Each role's main pages: (what the page is, its address). Home is where each login lands."""
    u: Callable[..., str] = lambda name, **kw: reverse(name, kwargs=kw or None)  # noqa: E731
    batch, running = {"reference": r["ready"]}, {"reference": r["running"]}
    return {
        "operator.mad": [
            ("batch page", u("manufacturing:batch", **running)),
            ("step page", u("manufacturing:step", **running, step_id="apheresis-count")),
        ],
        "manager.mad": [("verification", u("manufacturing:step", **running, step_id="receipt-identity"))],
        "qc.mad": [
            ("QC result", u("manufacturing:qc_result", **batch, attribute_id="viability")),
            ("review by exception", u("manufacturing:batch_review", **batch)),
        ],
        "qa": [
            ("deviations", u("quality:deviations")),
            ("deviation", u("quality:deviation", reference=r["deviation"])),
            ("change control", u("masterfile:changes")),
            ("change", u("masterfile:change", pk=r["change"])),
            ("draft version", u("masterfile:version", pk=r["version"])),
            ("site", u("network:site", code="MAD")),
            ("audit trail", u("trail:trail")),
            ("comparability", u("analytics:comparability")),
            ("people", u("accounts:people")),
            ("person", u("accounts:person", pk=r["person"])),
        ],
        "qp": [("release queue", u("release:queue")), ("release page", u("release:batch", **batch))],
        "planner": [("planning", u("planning:runs")), ("new study", u("planning:plan_new"))],
        "inspector": [
            ("batch record (bundle)", u("manufacturing:batch", **batch)),
            ("release page (bundle)", u("release:batch", **batch)),
        ],
        "navigator.mad": [("orders", u("custody:orders")), ("new order", u("custody:order_new"))],
    }


def _audit(page: Page, url: str) -> list[dict[str, Any]]:
    response = page.goto(url)
    assert response is not None and response.status == 200, (url, response and response.status)
    page.wait_for_load_state("networkidle")
    found = page.evaluate(RUN_AXE)
    assert found["version"] == AXE_VERSION
    return [{**v, "impact": "serious"} if v["id"] in DUPLICATE_ID_RULES else v for v in found["violations"]]


def _report(results: dict[str, list[dict[str, Any]]]) -> str:
    """Per page: the elements failing, by impact and rule; each serious or critical one in full."""
    lines = []
    for where, violations in results.items():
        counts = Counter(v["impact"] for v in violations for _ in v["nodes"])
        rules = ", ".join(f"{v['id']} {len(v['nodes'])}" for v in violations)
        lines.append(
            f"{where}: "
            + (
                ", ".join(f"{k} {counts[k]}" for k in ("critical", "serious", "moderate", "minor") if counts[k])
                + f" ({rules})"
                if violations
                else "none"
            )
        )
        for v in violations:
            blocking = v["impact"] in BLOCKING
            for node in v["nodes"][: 5 if blocking else 2]:
                summary = ": " + " ".join(node["summary"].split())[:300] if blocking else ""
                lines.append(f"    {v['impact']} {v['id']} ({v['help']}) at {node['target']}{summary}")
    return "\n".join(lines)


@pytest.mark.browser
def test_the_main_pages_of_every_role_have_no_serious_or_critical_violation(live_server, tx_db, page: Page):
    """Issue 15 (no requirement id: accessibility is the house's own rule): axe-core finds no serious or critical accessibility violation (colour contrast, labels,
    duplicate ids, landmarks, names of buttons and links) on the main pages of each role."""
    pages = _pages(_records())
    page.add_init_script(path=str(AXE))  # init scripts are not subject to the page's CSP
    base = live_server.url
    results: dict[str, list[dict[str, Any]]] = {}
    for username, visits in pages.items():
        _login(page, base, username)
        for where, path in [("home", "/"), *visits]:
            results[f"{username} {where} {path}"] = _audit(page, f"{base}{path}")
    report = _report(results)
    print("\naxe-core " + AXE_VERSION + " violations (nodes) by page and impact:\n" + report)
    blocking = [k for k, vs in results.items() if any(v["impact"] in BLOCKING for v in vs)]
    assert not blocking, f"serious or critical violations on {len(blocking)} pages:\n{report}"


@pytest.mark.browser
def test_the_comparability_pages_with_history_have_no_serious_or_critical_violation(live_server, tx_db, page: Page):
    """Issue 15: the comparability matrix and a site's control charts, drawn from five months of demo
    history (the pages are empty without lots), have no serious or critical violation for QA."""
    from pocare.demo import masterfile as masterfile_demo
    from pocare.demo import network as network_demo
    from pocare.demo.history import load_history

    version = masterfile_demo.load_product_and_v1(password=PASSWORD)
    network_demo.load(password=PASSWORD, product=version.product)
    load_history(months=5)
    page.add_init_script(path=str(AXE))
    base = live_server.url
    _login(page, base, "qa")
    results = {
        f"qa {where} {path}": _audit(page, f"{base}{path}")
        for where, path in [
            ("comparability", reverse("analytics:comparability")),
            ("site charts", reverse("analytics:site", kwargs={"code": "GRO"}) + f"?version={version.pk}"),
        ]
    }
    report = _report(results)
    print("\naxe-core " + AXE_VERSION + " violations (nodes) by page and impact:\n" + report)
    assert not [k for k, vs in results.items() if any(v["impact"] in BLOCKING for v in vs)], report
