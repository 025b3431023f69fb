"""How the generated permission test (tests/test_permission_matrix.py) names a recall at a site: the recall of
a lot received at that site (opened by Control Site QA through the service, once per site). A site person
sees the recalls of lots their site holds; another site's recall does not exist for them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _recall(site: str) -> dict[str, Any]:
    from pocare.supply import recall
    from pocare.supply.models import Recall
    from tests.manufacturing import helpers as h

    lot = h.lots(site, h.world())["SYR-5ML"]
    found = Recall.objects.filter(material_code=lot.material_code, lot_number=lot.lot_number).first()
    if found is None:
        found = recall.recall_open(actor=h.user("qa"), material_code=lot.material_code, lot_number=lot.lot_number,
                                   reason="Matrix recall", credentials=h.creds("qa"))
    return {"reference": found.reference}


OBJECTS: dict[str, Callable[[str], dict[str, Any]]] = {"supply:recall": _recall}
