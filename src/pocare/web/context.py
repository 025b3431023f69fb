"""Template context for every page: the navigation the person's roles allow and the site switcher."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from pocare.accounts import selectors as access
from pocare.accounts.roles import Perm
from pocare.core.scope import scoped_chain
from pocare.web.scope import scope_options

NAVIGATION = (
    ("Network", "network:sites", Perm.NETWORK_VIEW),
    ("Master file", "masterfile:list", Perm.MASTERFILE_VIEW),
    ("Audit trail", "trail:trail", Perm.LEDGER_VIEW),
    ("Reviews", "trail:reviews", Perm.LEDGER_VIEW),
    ("Verify", "trail:verify", Perm.LEDGER_VERIFY),
    ("People", "accounts:people", Perm.ACCOUNTS_VIEW),
    ("Training", "training:matrix", Perm.TRAINING_VIEW),
    ("Batches", "manufacturing:batches", Perm.BATCH_VIEW),
    ("Custody", "custody:orders", Perm.CUSTODY_VIEW),
    ("Deviations", "quality:deviations", Perm.DEVIATION_VIEW),
    ("Lots", "manufacturing:lots", Perm.BATCH_VIEW),
    ("Comparability", "analytics:comparability", Perm.ANALYTICS_VIEW),
    ("Planning", "planning:runs", Perm.PLANNING_VIEW),
    ("Release", "release:queue", Perm.RELEASE_VIEW),
)


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    perms = access.perms_of(user)
    memberships = access.active_memberships(user)
    items = [{"label": label, "url": reverse(name)} for label, name, perm in NAVIGATION if perm in perms]
    matching = [item["url"] for item in items if request.path.startswith(item["url"])]
    current = max(matching, key=len) if matching else None  # the most specific entry only
    return {
        "nav": [{**item, "active": item["url"] == current} for item in items],
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
