"""Demo manufacturing history: about 18 months of batches at the six active demo sites, so that
batch lists, review by exception, SPC and comparability have something real-looking to show.

This is history *loaded* by the demo loader, not executed in POCare: every batch is marked
``Batch.origin = demo_history``, its rows are inserted in bulk (no service ran, no per-step
ledger events), and the site's chain gets ONE ledger event per batch (``HISTORY_LOADED``) that
lists what was loaded with counts, the deviations, and a SHA-256 of the batch's generated content.
No electronic signatures are created: a signature needs a re-authenticated person at the moment
of signing (P11-200), which loaded history cannot have; the history shows who performed and who
verified each step, not that they signed it. For the same reason no service can write it: each
service stamps the server's clock and signs at that moment. The rows are written by
``custody``, ``manufacturing`` and ``quality`` in this package — each writes only its own app's
rows, each write marked ``# demo:`` with the reason — and the events by ``ledger.services``.

What is generated (``generator``, ``biology``, ``device``), per batch (``random.Random(seed)``, so the
same seed gives the same history):

* a therapy order (accepted, with a COI) and its apheresis collection with a DIN
  (``pocare.custody.isbt``), and the custody hand-offs from vein to vein — a few blocked by a
  scanned label that was another patient's, each with a custody deviation;
* every step of master-file v1 in order, done by the site's demo people as the steps'
  qualifications ask (operator; QC analyst for the flow-cytometry IPC; the site manager as second
  person), with values drawn around the master file's targets and ranges, a few out of range
  (process deviation linked from the value), and the material lots used (released, unexpired);
* hourly device readings of the monitored parameters over the culture, one device push, and
  the odd alarm acknowledged by the operator;
* a QC result for every attribute of the specification, drawn from the published distributions
  (DOMAIN.md), out-of-specification results opening a laboratory deviation.

About 4 % of batches fail (UK national panel 3.87 %, Blood Cancer J 2025) and are aborted at
the step that found it; at Groningen the transduction (CAR+) drifts down over the last four
months, for the SPC pages to find.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from pocare.custody.models import Handoff
from pocare.demo.history import manufacturing
from pocare.demo.history.generator import Generator
from pocare.demo.history.plan import CHUNK, PRODUCT_CODE, SITE_CODES
from pocare.demo.history.write import write_chunk
from pocare.manufacturing.models import (
    Alarm,
    Batch,
    BatchOrigin,
    BatchStatus,
    DeviceReading,
    MaterialUse,
    QcResult,
    StepExecution,
    StepValue,
)
from pocare.masterfile.models import MasterFileVersion
from pocare.network.models import Site, SiteStatus
from pocare.quality.models import Deviation

COUNTS = ("batches", "aborted", "steps", "values", "materials", "readings", "alarms", "qc_results", "deviations",
          "handoffs")


@dataclass(frozen=True)
class HistorySummary:
    """What the demo history holds (or, when ``loaded`` is false, held already)."""

    loaded: bool
    batches: int
    aborted: int
    steps: int
    values: int
    materials: int
    readings: int
    alarms: int
    qc_results: int
    deviations: int
    handoffs: int
    seconds: float

    def counts_line(self) -> str:
        """The counts, the same whether the history was loaded now or before."""
        return (f"Demo history: {self.batches} batches ({self.aborted} aborted), {self.steps} steps, "
                f"{self.values} step values, {self.readings} device readings, {self.alarms} alarms, "
                f"{self.qc_results} QC results, {self.deviations} deviations, {self.handoffs} custody hand-offs")

    def line(self) -> str:
        return (f"{self.counts_line()} — generated in {self.seconds:.1f} s" if self.loaded
                else f"{self.counts_line()} — already loaded")


def load_history(*, seed: int = 2026, months: int = 18, now: dt.datetime | None = None) -> HistorySummary:
    """Load ``months`` of demo manufacturing history ending about a month before ``now`` (default: the
    server clock). Idempotent: when demo-history batches exist, nothing is loaded and their counts
    are returned."""
    if Batch.objects.filter(origin=BatchOrigin.DEMO_HISTORY).exists():
        return history_summary()
    began = time.perf_counter()
    now = now or timezone.now()
    if now.tzinfo is None:
        raise ValueError("now must be UTC-aware")
    now = now.astimezone(dt.UTC)
    version = MasterFileVersion.objects.select_related("product").filter(
        product__code=PRODUCT_CODE, number=1).first()
    if version is None:
        raise RuntimeError("Load the demo master file (pocare.demo.masterfile) before the demo history.")
    sites = list(Site.objects.filter(code__in=SITE_CODES, status=SiteStatus.ACTIVE).order_by("code"))
    gen = Generator(version=version, sites=sites, seed=seed, months=months, now=now)
    with transaction.atomic():
        counts = _generate(gen)
    return HistorySummary(loaded=True, seconds=time.perf_counter() - began, **counts)


def history_summary() -> HistorySummary:
    """Counts of the demo history in the database."""
    batches = Batch.objects.filter(origin=BatchOrigin.DEMO_HISTORY)
    of_batch = {"step__batch__origin": BatchOrigin.DEMO_HISTORY}
    return HistorySummary(
        loaded=False,
        batches=batches.count(),
        aborted=batches.filter(status=BatchStatus.ABORTED).count(),
        steps=StepExecution.objects.filter(batch__origin=BatchOrigin.DEMO_HISTORY).count(),
        values=StepValue.objects.filter(**of_batch).count(),
        materials=MaterialUse.objects.filter(**of_batch).count(),
        readings=DeviceReading.objects.filter(batch__origin=BatchOrigin.DEMO_HISTORY).count(),
        alarms=Alarm.objects.filter(batch__origin=BatchOrigin.DEMO_HISTORY).count(),
        qc_results=QcResult.objects.filter(batch__origin=BatchOrigin.DEMO_HISTORY).count(),
        deviations=Deviation.objects.filter(batch__origin=BatchOrigin.DEMO_HISTORY).count(),
        handoffs=Handoff.objects.filter(order__batch__origin=BatchOrigin.DEMO_HISTORY).count(),
        seconds=0.0,
    )


def _generate(gen: Generator) -> dict[str, int]:
    """Lots first (the batches draw from them), then the batches, written chunk by chunk."""
    manufacturing.write_lots(gen.plan_lots())
    plans = gen.plan_batches()
    for i in range(0, len(plans), CHUNK):
        write_chunk(gen, plans[i:i + CHUNK])
    return {k: gen.counts[k] for k in COUNTS}
