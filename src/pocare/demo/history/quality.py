"""The history's deviations: opened by the out-of-range values, the out-of-specification results
and the blocked hand-offs of the generated batches, inserted in bulk.

No quality service can make these: ``deviation_open`` stamps the server's clock, takes
the next reference at that moment and notifies by the escalation rules; the history's
deviations were opened months ago, numbered in the order of their own dates, and their news is
long past. They are left open: ``pocare.demo.quality`` classifies, investigates and closes
them afterwards through the quality services.
"""

from __future__ import annotations

from pocare.custody.models import Handoff, TherapyOrder
from pocare.demo.history.generator import Generator
from pocare.demo.history.plan import BatchPlan, DevPlan
from pocare.manufacturing.models import Batch
from pocare.quality.models import Deviation


def write_deviations(gen: Generator, plans: list[BatchPlan], orders: list[TherapyOrder],
                     batches: list[Batch]) -> None:
    """Every deviation of every batch, each linked to its step where a step raised it."""
    deviations = []
    for p, o, b in zip(plans, orders, batches, strict=True):
        for d in p.devs:
            d.row = Deviation(reference=d.reference, site=p.site, kind=d.kind, title=d.title,
                              description=d.description, product=gen.product, batch=b, order=o,
                              step_id=d.step_id, source_type=d.source_type,
                              source_id=str(d.source_step.row.pk) if d.source_step and d.source_step.row else "",
                              opened_at=d.opened_at,
                              opened_by=d.opened_by)
            deviations.append(d.row)
    Deviation.objects.bulk_create(deviations)  # demo: back-dated deviations (see the module)


def link_sources(sources: list[tuple[DevPlan, Handoff]]) -> None:
    """A blocked hand-off and its deviation point at each other: link the deviation to its source
    now that the hand-off has an id (as custody.services does after the hand-off is saved)."""
    for dev, source in sources:
        assert dev.row is not None
        dev.row.source_id = str(source.pk)
    rows = [d.row for d, _ in sources if d.row is not None]
    Deviation.objects.bulk_update(rows, ["source_id"])  # demo: the rows above, same transaction; no service sets it
