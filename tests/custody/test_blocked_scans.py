"""A refused custody scan is shown as blocked, with its reason, wherever hand-offs are listed: never
like an ordinary entry."""

from __future__ import annotations

import re

import pytest

from pocare.custody.models import Handoff, HandoffOutcome
from tests.custody.helpers import accepted, collect

pytestmark = pytest.mark.django_db


def _rows(page: str) -> list[str]:
    return re.findall(r"<tr[^>]*data-outcome=\"(?:blocked|completed)\".*?</tr>", page, re.S)


def test_a_blocked_scan_reads_blocked_with_its_reason_and_a_completed_one_does_not(client, login):
    """ATMP-TRACE P11-10h: on the order page the refused scan's row has its own class, a Blocked badge
    and the reason (what was presented, what was expected) with its deviation; the accepted scan
    that follows reads Completed with none of it."""
    o = accepted()
    c = collect(o)
    other = collect(accepted(recipient="PT-9"))
    login("physician.mad")
    client.post(f"/custody/orders/{o.pk}/handoffs/", {
        "kind": "collection", "collection": c.pk, "presented_identifier": other.din_printed, "location": "Ward 3"})
    client.post(f"/custody/orders/{o.pk}/handoffs/", {
        "kind": "collection", "collection": c.pk, "presented_identifier": c.din_printed, "location": "Ward 3"})
    blocked = Handoff.objects.get(order=o, outcome=HandoffOutcome.BLOCKED)
    rows = _rows(client.get(f"/custody/orders/{o.pk}/").content.decode())
    assert len(rows) == 2
    bad, good = rows
    assert 'class="row-bad handoff-blocked"' in bad and 'data-outcome="blocked"' in bad
    assert ">Blocked<" in bad and "Scan refused" in bad and "identifier mismatch" in bad
    assert other.din_printed in bad and blocked.deviation.reference in bad
    assert "handoff-blocked" not in good and ">Completed<" in good and "Scan refused" not in good
    assert blocked.blocked_reason.startswith("identifier mismatch: presented")
    assert Handoff.objects.get(order=o, outcome=HandoffOutcome.COMPLETED).blocked_reason == ""
