"""Set-up for the costs tests: a cost model drafted and approved by Control Site QA through the services."""

from __future__ import annotations

import copy
from typing import Any

from pocare.costs import services
from pocare.costs.models import CostModel
from tests.manufacturing import helpers as h

#: A cost model pricing the demo product's records (rates in € per hour; prices per master-file unit).
CONTENT: dict[str, Any] = {
    "currency": "EUR",
    "labour": {"hourly_rates": {"operator": "52.50", "qc_analyst": 58, "site_manager": 71, "control_qa": 80,
                                "qp": 120},
               "site_hourly_rates": {"MAD": {"operator": 47}},
               "verification_minutes": 12},
    "materials": {},  # filled per test from the master file's bill of materials
    "qc_tests": {},
    "facility": {"hourly": 40, "site_hourly": {"MAD": "44.25"}},
    "equipment": {"hourly": {"clinimacs_prodigy": "18.7", "lonza_cocoon": 21, "other": 15}},
    "review": {"qa_hours": 2, "qp_hours": "1.5"},
    "logistics": {"per_shipment": 650},
    "overhead": {"percent": 15},
}


def content(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(CONTENT)
    out.update(changes)
    return out


def approved(body: dict[str, Any] | None = None, *, effective_from: str = "2020-01-01",
             reason: str = "Rates of the 2026 budget") -> CostModel:
    qa = h.user("qa")
    model = services.cost_model_draft(actor=qa, content=body or content(), reason=reason,
                                      effective_from=effective_from)
    return services.cost_model_approve(actor=qa, model=model, reason="Checked against the budget",
                                       credentials=h.creds(qa))
