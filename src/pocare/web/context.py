"""Template context for every page: the navigation the person's roles allow and the site switcher."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import cached_property

from pocare.accounts import selectors as access
from pocare.accounts.roles import Perm
from pocare.core import worklist
from pocare.core.scope import scoped_chain
from pocare.web.scope import scope_options

#: The menus of the main navigation: (menu, ((label, url name, permission), …)). A menu of which
#: the person may open one page only is shown as that page's link; every menu fits one row at
#: 1280 px for every role (tests/e2e/test_navigation.py).
NAVIGATION: tuple[tuple[str, tuple[tuple[str, str, Perm], ...]], ...] = (
    ("Production", (
        ("Batches", "manufacturing:batches", Perm.BATCH_VIEW),
        ("Lots", "manufacturing:lots", Perm.BATCH_VIEW),
        ("Stock", "supply:stock", Perm.SUPPLY_VIEW),
        ("Transfers", "supply:transfers", Perm.SUPPLY_VIEW),
        ("Purchase requests", "supply:purchases", Perm.SUPPLY_VIEW),
        ("Trace and recall", "supply:trace", Perm.SUPPLY_VIEW),
        ("Custody", "custody:orders", Perm.CUSTODY_VIEW),
    )),
    ("Release", (("Release", "release:queue", Perm.RELEASE_VIEW),)),
    ("Patients", (
        ("Patients", "patients:navigator", Perm.PATIENTS_VIEW),
        ("My referrals", "patients:physician", Perm.PATIENTS_VIEW),
        ("Consent documents", "patients:documents", Perm.PATIENTS_VIEW),
    )),
    ("Quality", (
        ("Deviations", "quality:deviations", Perm.DEVIATION_VIEW),
        ("Comparability", "analytics:comparability", Perm.ANALYTICS_VIEW),
    )),
    ("Audit", (
        ("Audit trail", "trail:trail", Perm.LEDGER_VIEW),
        ("Reviews", "trail:reviews", Perm.LEDGER_VIEW),
        ("Verify", "trail:verify", Perm.LEDGER_VERIFY),
    )),
    ("Network", (
        ("Network", "network:sites", Perm.NETWORK_VIEW),
        ("Master file", "masterfile:list", Perm.MASTERFILE_VIEW),
        ("People", "accounts:people", Perm.ACCOUNTS_VIEW),
        ("Training", "training:matrix", Perm.TRAINING_VIEW),
        ("Planning", "planning:runs", Perm.PLANNING_VIEW),
        ("Weeks of autarky", "planning:autarky", Perm.PLANNING_VIEW),
        ("Cost model", "costs:models", Perm.COSTS_VIEW),
        ("Cost reports", "costs:reports", Perm.COSTS_VIEW),
        ("Business case", "planning:business_case", Perm.COSTS_VIEW),
        ("Jobs", "jobs:jobs", Perm.JOBS_VIEW),  # everyone's jobs (QA); a person's own: linked from planning
    )),
    ("Patients", (
        ("Outcomes", "patients:outcomes", Perm.OUTCOMES_VIEW),
    )),
)


def _menus(request: HttpRequest, perms: frozenset[Perm]) -> list[dict[str, Any]]:
    """The menus the person's permissions open, each with its entries; only the most specific entry
    that the path starts with is marked current (``/audit/reviews/`` is Reviews, not Audit trail)."""
    menus: list[dict[str, Any]] = []
    for label, entries in NAVIGATION:
        items: list[dict[str, Any]] = [{"label": item, "url": reverse(name)} for item, name, perm in entries
                                       if perm in perms]
        if items:
            menus.append({"label": label, "items": items})
    urls = [i["url"] for m in menus for i in m["items"] if request.path.startswith(i["url"])]
    current = max(urls, key=len) if urls else None
    for menu in menus:
        for item in menu["items"]:
            item["active"] = item["url"] == current
        menu["active"] = any(i["active"] for i in menu["items"])
    return menus


class Work:
    """What waits for the person (``pocare.core.worklist``), counted when a page first shows it (a
    fragment never does) and once per request: the home page's queues reuse the navigation's counts."""

    def __init__(self, request: HttpRequest) -> None:
        self.request = request

    @cached_property
    def counts(self) -> dict[str, int]:
        cached: dict[str, int] | None = getattr(self.request, "_pocare_work_counts", None)
        if cached is None:
            cached = worklist.counts(self.request.user)
            self.request._pocare_work_counts = cached  # type: ignore[attr-defined]
        return cached

    @property
    def waiting(self) -> int:
        return sum(self.counts.values())


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    perms = access.perms_of(user)
    memberships = access.active_memberships(user)
    return {
        "menus": _menus(request, perms),
        "work": Work(request),
        "my_roles": memberships,
        "scope": scoped_chain(request),
        "scope_options": scope_options(request),
        "read_only": access.is_read_only(user),
        # When every role the person holds ends (inspectors, A11-IAM): shown in the header.
        "access_ends": _access_ends(memberships),
    }


def _access_ends(memberships: list[Any]) -> Any:
    """The moment the person's last role ends, when every role they hold has an end (inspectors)."""
    ends = [m.valid_until for m in memberships]
    if not ends or None in ends:
        return None
    return max(ends)
