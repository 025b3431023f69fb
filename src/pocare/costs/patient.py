"""The cost of one patient treated (COST-BATCH): every batch made for them — the failed, aborted and rejected
ones included — priced from its records (``rollup``), and their clinical episode from the records of custody
and the patients app: each apheresis (a collection), each infusion with the lymphodepletion before it (the
infusion hand-off), each follow-up visit done, by its mode. Each clinical line is priced with the cost
model version in force on the day of its event, as a batch is with the version of its start.

Read in a fixed number of queries whatever the patient's history: the patient, their orders, the batches'
roll-up, the collections, the infusions, the visits done.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pocare.accounts import selectors as access
from pocare.accounts.roles import Perm
from pocare.costs import compute, rollup
from pocare.costs.selectors import batches_visible
from pocare.custody.models import Collection, Handoff, HandoffKind, HandoffOutcome
from pocare.manufacturing.models import Batch
from pocare.patients.models import Patient, Referral, Visit, VisitStatus
from pocare.patients.selectors import patients_visible


@dataclass
class PatientCost:
    patient: Patient
    batches: list[rollup.BatchTotal]
    clinical: list[compute.CostLine]
    models: dict[int, int]  # the clinical lines' versions: model pk → number
    when: dict[tuple[str, int], dt.datetime]  # when each clinical record happened

    @property
    def batches_total(self) -> Decimal:
        return sum((b.total for b in self.batches), Decimal("0.00"))

    @property
    def clinical_total(self) -> Decimal:
        return sum((line.amount for line in self.clinical), Decimal("0.00"))

    @property
    def total(self) -> Decimal:
        return self.batches_total + self.clinical_total

    @property
    def unpriced(self) -> int:
        return sum(b.unpriced for b in self.batches) + sum(1 for line in self.clinical if not line.priced)

    @property
    def treated(self) -> bool:
        return any(kind == "custody.Handoff" for kind, _ in self.when)


def patient_for(user: Any, pseudonym: str) -> Patient:
    """The patient if the person reads costs where the patient is treated or where a batch of theirs was
    made (a Control Site role: any); otherwise ``Patient.DoesNotExist`` (a 404)."""
    if not access.has_perm(user, Perm.COSTS_VIEW):
        raise Patient.DoesNotExist
    patient = Patient.objects.get(pseudonym=pseudonym)
    sites = access.sites_with_perm(user, Perm.COSTS_VIEW)
    if sites is None or patient.treating_site_id in sites:
        return patient
    if batches_visible(user).filter(order__referral__patient=patient).exists():
        return patient
    raise Patient.DoesNotExist


def may_see_pseudonym(user: Any, patient: Patient) -> bool:
    """Whether the person may see the patient's pseudonym (an identifier: the patients app's rule,
    ``patients.view`` at the treating hospital, PAT-PRIVACY). A reader of costs who may not is shown the
    costs without it."""
    return patients_visible(user).filter(pk=patient.pk).exists()


def patient_cost(patient: Patient) -> PatientCost:
    orders = list(Referral.objects.filter(patient=patient, order__isnull=False).values_list("order_id", flat=True))
    batches = rollup.batch_totals(Batch.objects.filter(order_id__in=orders))
    events: list[tuple[compute.ClinicalEvent, dt.datetime]] = []
    for c in Collection.objects.filter(order_id__in=orders).order_by("collection_started_at", "pk"):
        events.append((compute.ClinicalEvent("apheresis", c.pk, f"collection {c.din}"), c.collection_started_at))
    for h in (Handoff.objects.filter(order_id__in=orders, kind=HandoffKind.INFUSION,
                                     outcome=HandoffOutcome.COMPLETED).order_by("occurred_at", "pk")):
        events.append((compute.ClinicalEvent("infusion", h.pk, h.occurred_at.date().isoformat()), h.occurred_at))
    for v in (Visit.objects.filter(referral__patient=patient, status=VisitStatus.DONE, done_at__isnull=False)
              .order_by("day", "pk")):
        events.append((compute.ClinicalEvent("visit", v.pk, v.label, v.mode), v.done_at))  # type: ignore[arg-type]
    models = rollup.Models()
    priced = []
    used: dict[int, int] = {}
    for event, at in events:
        model = models.for_start(at)
        if model is not None:
            used[model.pk] = model.number
        priced.append((event, model.content if model is not None else None, model.pk if model is not None else 0))
    return PatientCost(patient=patient, batches=batches, clinical=compute.clinical_lines(priced), models=used,
                       when={(compute.CLINICAL_SOURCES[e.kind], e.pk): at for e, at in events})
