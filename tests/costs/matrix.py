"""How the generated permission test (tests/test_permission_matrix.py) names the costs app's objects at a
site: the cost of a batch of that site (the manufacturing matrix's batch in progress); a signed cost report
of that site (made once per site, over a period with no batch: figures of nothing, a page like any other);
the cost of a patient treated at that site (the patients matrix's infused patient)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.manufacturing.matrix import OBJECTS as MANUFACTURING
from tests.patients.matrix import OBJECTS as PATIENTS


def _report(site: str) -> dict[str, Any]:
    import datetime as dt

    from django.utils import timezone

    from pocare.accounts.models import User
    from pocare.costs import report
    from pocare.costs.models import CostReport
    from pocare.manufacturing.models import Batch
    from pocare.network.models import Site

    where = Site.objects.get(code=site)
    found = CostReport.objects.filter(site=where).first()
    if found is None:
        start, end = dt.date(2001, 1, 1), dt.date(2001, 1, 31)
        figures = report.figures_for(Batch.objects.none(), site=where, start=start, end=end)
        found = CostReport.objects.create(site=where, period_start=start, period_end=end, figures=figures,
                                          figures_hash=report.figures_hash(figures),
                                          created_by=User.objects.get(username="qa"), created_at=timezone.now())
    return {"pk": found.pk}


OBJECTS: dict[str, Callable[[str], dict[str, Any]]] = {
    "costs:batch": MANUFACTURING["manufacturing:batch"],
    "costs:report": _report,
    "costs:patient": PATIENTS["patients:followup"],
}
