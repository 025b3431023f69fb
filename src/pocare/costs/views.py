"""Costs pages (COST-BATCH): the cost model's versions with their signatures, and the cost of a batch
line by line, each line linked to the record it comes from. Views parse input and call selectors;
selectors decide what is seen (``costs.view`` at the batch's site; another site's batch is a 404)."""

from __future__ import annotations

import json
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from pocare.accounts.decorators import requires
from pocare.accounts.roles import Perm
from pocare.costs import compute, selectors
from pocare.costs.models import CostModel
from pocare.manufacturing.models import Batch


def _links(cost: selectors.BatchCost) -> dict[tuple[str, int], str]:
    """The page of each source record: the step on the batch record, the lot's stock card, the QC
    result, the order's shipments, the batch, its certification, the cost model's version."""
    records, ref = cost.records, cost.batch.reference
    out = {("manufacturing.StepExecution", s.pk): reverse("manufacturing:step", args=[ref, s.step_id])
           for s in records.steps}
    out |= {("manufacturing.MaterialUse", u.pk): reverse("supply:lot", args=[u.lot_pk])
            for u in records.materials if u.lot_pk is not None}
    out |= {("manufacturing.QcResult", r.pk): reverse("manufacturing:qc_result", args=[ref, r.attribute_id])
            for r in records.qc}
    out |= {("custody.Shipment", s.pk): reverse("custody:order", args=[s.order_pk]) + "#shipments"
            for s in records.shipments}
    out[("manufacturing.Batch", records.pk)] = reverse("manufacturing:batch", args=[ref])
    if records.certification_pk is not None:
        out[("release.Certification", records.certification_pk)] = reverse("release:batch", args=[ref])
    out[("costs.CostModel", cost.model.pk)] = reverse("costs:models") + f"#v{cost.model.number}"
    return out


def _model_asked(request: HttpRequest) -> CostModel | None:
    """``?model=N``: price with version N (approved now or before) instead of the one in force."""
    asked = request.GET.get("model", "").strip()
    if not asked:
        return None
    if not asked.isdigit() or len(asked) > 9:
        raise Http404("No such cost model.")
    found = CostModel.objects.filter(number=int(asked), status__in=selectors.IN_FORCE).first()
    if found is None:
        raise Http404("No such cost model.")
    return found


@requires(Perm.COSTS_VIEW)
@require_GET
def batch_cost(request: HttpRequest, reference: str) -> HttpResponse:
    """The cost of one batch by category, with subtotals and the total; each line names its record."""
    try:
        batch = selectors.batch_for(request.user, reference)
    except Batch.DoesNotExist:
        raise Http404("No such batch.") from None
    cost = selectors.batch_cost(batch, _model_asked(request))
    context: dict[str, Any] = {"batch": batch, "cost": cost,
                               "versions": selectors.models_listed().filter(status__in=selectors.IN_FORCE)}
    if cost is not None:
        links = _links(cost)
        context["groups"] = [(key, label, subtotal, [(line, links.get((line.source.label, line.source.pk), ""))
                                                     for line in lines])
                             for key, label, subtotal, lines in cost.sheet.subtotals()]
        context["categories"] = compute.CATEGORIES
    return render(request, "costs/batch.html", context)


@requires(Perm.COSTS_VIEW)
@require_GET
def model_list(request: HttpRequest) -> HttpResponse:
    """The cost model's versions, newest first: status, effective day, who drafted and approved, the
    approval signature (with whether it still holds) and the content."""
    models = list(selectors.models_listed())
    signatures = selectors.model_signatures(models)
    for model in models:
        model.content_text = json.dumps(model.content, indent=2, sort_keys=True)  # type: ignore[attr-defined]
    return render(request, "costs/models.html", {"rows": [(m, signatures[m.pk]) for m in models]})
