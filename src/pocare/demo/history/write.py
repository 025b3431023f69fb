"""Plans to rows: each chunk of planned batches is written by the modules named for the app whose
rows they are (``custody``, ``manufacturing``, ``quality``), in the order their keys need."""

from __future__ import annotations

from pocare.demo.history import custody, manufacturing, quality
from pocare.demo.history.generator import Generator
from pocare.demo.history.plan import BatchPlan
from pocare.manufacturing.models import MaterialUse, QcResult, StepValue


def write_chunk(gen: Generator, plans: list[BatchPlan]) -> None:
    """Insert the rows of ``plans`` in bulk, then one ledger event per batch."""
    for p in plans:
        prefix = f"{p.site.code}-{p.start.year}-"
        p.reference = f"{prefix}{gen.numbers.take('batch', prefix):04d}"
    orders = custody.write_orders(gen, plans)
    collections = custody.write_collections(plans, orders)
    batches = manufacturing.write_batches(gen, plans, orders, collections)
    steps, step_plans = manufacturing.write_steps(plans, batches)
    quality.write_deviations(gen, plans, orders, batches)
    rows: list[QcResult | StepValue | MaterialUse] = [*manufacturing.write_values_and_materials(steps, step_plans),
                                                      *manufacturing.write_qc_results(gen, plans, batches)]
    sources = custody.write_handoffs(plans, orders, collections, batches)
    gen.counts["logger_readings"] += custody.write_shipments(plans, orders, batches)
    quality.link_sources(sources)
    log = manufacturing.write_device_data(gen, plans, batches)
    manufacturing.record_loaded(gen, plans, batches, collections, log, rows)
    for p in plans:
        gen.counts["steps"] += len(p.steps)
        gen.counts["values"] += sum(len(s.values) for s in p.steps)
        gen.counts["materials"] += sum(len(s.materials) for s in p.steps)
        gen.counts["qc_results"] += len(p.qc)
        gen.counts["handoffs"] += len(p.handoffs)
        gen.counts["deviations"] += len(p.devs)
    gen.counts["batches"] += len(plans)
    gen.counts["aborted"] += sum(1 for p in plans if p.failure)
