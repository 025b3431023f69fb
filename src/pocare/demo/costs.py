"""The demo network's cost model (COST-BATCH): version 1, drafted and approved (signed) by Control Site QA
before the history's first batch, so that every batch of the demo, history and live, has a cost; version 2,
from the day the sites' stock was delivered, prices those vector lots at their own (invoice) price.

Every figure is an **estimate** for a demonstration, chosen to be plausible for an academic CAR-T made in a
closed automated device in Europe, not a published price: the totals land between DKFZ's full-cost estimate
(below €60,000 a product at 18 patients a year) and ARI-0001's hospital price (about €89,000), the anchors
of docs/costs.md. A real network replaces them with its own contracts and payroll.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pocare.accounts.models import User
from pocare.costs import report, services
from pocare.costs.models import CostModel, CostReport
from pocare.ledger.signing import SigningCredentials
from pocare.manufacturing.models import Batch, MaterialLot
from pocare.masterfile import schema
from pocare.masterfile.models import MasterFileVersion
from pocare.network.models import Site
from pocare.supply.models import MovementKind

#: € per hour by role (estimates: European academic salaries with employer charges).
HOURLY = {"operator": 45, "qc_analyst": 50, "site_manager": 65, "control_qa": 70, "qp": 95}
#: € per unit of each material of the bill (estimates; the vector is the academic production cost of a dose).
MATERIALS = {"TS520": 6500, "CD4-REAG": 3900, "CD8-REAG": 3900, "TRANSACT": 1400, "TEXMACS": 320, "IL7": 28,
             "IL15": 28, "LV-CAR19": 15000, "PBS-EDTA": 65, "SYR-5ML": 1, "BACT-AER": 16, "BACT-ANA": 16,
             "BAG-INF": 45, "PLASMALYTE": 12}
#: € per QC result by attribute (estimates; any attribute not named costs DEFAULT_QC).
QC = {"viability": 150, "cd3": 250, "car-positive": 350, "dose": 150, "vcn": 900, "endotoxin": 250,
      "sterility": 450, "mycoplasma": 700, "rcl": 1200, "potency": 900}
DEFAULT_QC = 300
#: A site's capital (planning's business case). Estimates: a prefabricated grade C/B unit with its air
#: handling, qualified (the deployable units of von der Leyen et al., Front Med 2025, have no published
#: price); two closed devices; the device's price (€350k, which the equipment rate of €8–9 an hour spreads
#: over 7 years); straight-line over 10 years, as the twin's site cost spreads the Italian set-up.
CAPITAL: dict[str, Any] = {"unit_price": 1_200_000, "devices_per_unit": 2, "device_price": 350_000,
                           "installation": 150_000, "depreciation_years": 10}
#: A site's fixed cost a year (estimates): the staff on payroll whatever the volume (QC analysts' bench
#: time, environmental monitoring, gowning: what no batch record shows), rent, the devices' service
#: contracts and requalification, and the site's share of Control Site QA.
FIXED: dict[str, Any] = {"staff": 180_000, "rent": 60_000, "maintenance": 80_000, "qa_share": 50_000}
#: The centralized product's price to break even against: Kymriah's UK list price (published) in euros at
#: €1.17 a pound (the exchange rate an estimate).
CENTRALIZED_PRICE: dict[str, Any] = {
    "value": 330_000, "source": "Kymriah UK list price £282,000 (DOMAIN.md, Cost), at €1.17 a pound"}


def content(versions: list[MasterFileVersion]) -> dict[str, Any]:
    """The model's content, pricing every material and QC attribute of ``versions``."""
    materials: dict[str, int] = dict(MATERIALS)  # the later versions' materials too
    tests: dict[str, int] = dict(QC)
    for version in versions:
        for step in schema.iter_steps(version.content):
            for m in step.get("materials", []):
                materials.setdefault(m["code"], 100)
        for attribute in (version.content.get("specification") or {}).get("attributes", []):
            tests.setdefault(attribute["id"], DEFAULT_QC)
    return {"currency": "EUR",
            "labour": {"hourly_rates": HOURLY, "verification_minutes": 10},
            "materials": materials, "qc_tests": tests,
            "facility": {"hourly": 55},  # a share of a grade C room for a closed-system run (estimate)
            # ~€350k a device over 7 years, with its service contract (estimates)
            "equipment": {"hourly": {"clinimacs_prodigy": 9, "lonza_cocoon": 8, "other": 9}},
            "review": {"qa_hours": 3, "qp_hours": 1.5},
            # a validated courier leg with a data logger; its driver's hour (estimates)
            "logistics": {"per_shipment": 700, "per_hour": 40},
            "overhead": {"percent": 20},
            # The clinical episode (estimates): an apheresis session, a fludarabine/cyclophosphamide course,
            # the infusion with about ten days on the ward, a follow-up visit by its mode.
            "clinical": {"apheresis": 4200, "lymphodepletion": 2600, "infusion": 9500,
                         "visit": {"in_person": 380, "phone": 60, "questionnaire": 25}},
            # planning's business case (docs/business-case.md): estimates unless a source is named
            "capital": CAPITAL, "fixed": FIXED, "centralized_price": CENTRALIZED_PRICE}


def load_model(*, versions: list[MasterFileVersion], password: str, effective_from: dt.date) -> CostModel:
    """Version 1 of the cost model, drafted and approved by Control Site QA (once)."""
    found = CostModel.objects.order_by("number").first()
    if found is not None:
        return found
    qa = User.objects.get(username="qa")
    draft = services.cost_model_draft(actor=qa, content=content(versions), effective_from=effective_from,
                                      reason="Demo: the network's first cost model (estimates, docs/costs.md)")
    return services.cost_model_approve(actor=qa, model=draft, reason="Demo: approved for the demo network",
                                       credentials=SigningCredentials(username="qa", password=password))


#: € per unit of the vector lots delivered into the sites' stock (an estimate: a new supply contract), where
#: version 1 prices every lot of the vector at ``MATERIALS["LV-CAR19"]``.
VECTOR_LOT_PRICE = 14_200
LOT_PRICED = "LV-CAR19"


def load_lot_prices(*, password: str) -> CostModel | None:
    """Version 2 of the model (once): version 1's content with a price per lot (``material_lots``) for each
    vector lot received into a site's stock, effective from the day the first of them was received; the live
    batches that use them show "the lot's price" on their cost. None before version 1 or without such lots."""
    if (found := CostModel.objects.filter(number__gte=2).order_by("number").first()) is not None:
        return found
    v1 = CostModel.objects.filter(number=1).first()
    lots = (MaterialLot.objects.filter(material_code=LOT_PRICED, movements__kind=MovementKind.RECEIVED)
            .distinct().order_by("received_at"))
    if v1 is None or not lots:
        return None
    qa = User.objects.get(username="qa")
    content = {**v1.content, "material_lots": {LOT_PRICED: {lot.lot_number: VECTOR_LOT_PRICE for lot in lots}}}
    draft = services.cost_model_draft(
        actor=qa, content=content, effective_from=lots[0].received_at.date(),
        reason="Demo: the vector lots delivered into stock priced at their invoice price (new supply contract)")
    return services.cost_model_approve(actor=qa, model=draft, reason="Demo: approved for the demo network",
                                       credentials=SigningCredentials(username="qa", password=password))


#: The demo's signed cost report: the whole network over the last 18 months (the cost report page's default).
REPORT_DAYS = 548


def load_report(*, password: str, today: dt.date) -> list[CostReport]:
    """The network's cost report for the last 18 months, signed by Control Site QA (once): the cost reports
    page opens with a signed report and its comparison with the published figures. A network grown past
    what one signed report holds (``report.MAX_BATCHES``; the page benchmark's 11,000 batches) gets one
    report per site instead, as Control Site QA would have to sign it."""
    found = list(CostReport.objects.order_by("pk"))
    if found or not Batch.objects.exists():
        return found
    start = today - dt.timedelta(days=REPORT_DAYS)
    scopes: list[Site | None] = [None]
    if report.batches_in(Batch.objects.all(), None, start, today).count() > report.MAX_BATCHES:
        scopes = [site for site in Site.objects.order_by("code")
                  if report.batches_in(Batch.objects.all(), site, start, today).exists()]
    qa = User.objects.get(username="qa")
    return [services.cost_report_sign(
        actor=qa, site=site, start=start, end=today,
        reason=f"Demo: {'the network' if site is None else site.code}'s costs of the last 18 months, "
               f"for the payers' review",
        credentials=SigningCredentials(username="qa", password=password)) for site in scopes]
