"""A site's business case and the twin's scenarios priced on the one signed cost model (issue 18, "Cost").
Pure: no Django (a library module); the page reads the model and the master file and passes their content.

Three computations, each from the cost model's ``content`` (``costs.content``), never from a second set of
prices (docs/business-case.md):

- :func:`variable_cost`: what one batch costs *before* it is made, from the product's master-file version
  (its bill of materials, its specification's QC tests, its steps' expected hands-on minutes) × the
  model's prices, the device and cleanroom hours over the process duration, the review hours × the QA and
  QP rates, the shipments × the price per shipment, and the overhead — the same lines, in the same
  categories and with the same rounding, as ``costs.compute.batch_cost_lines`` gives from a batch's records.
- :func:`business_case`: for 1..N patients a year, the annualized capital (prefabricated units, devices,
  installation, straight-line depreciation) + the site's fixed cost + the variable cost × the batches
  (``1 / (1 − failure rate)`` per patient treated: a failed batch is made again), the cost per patient, the
  devices and units the volume needs (Erlang C: the fewest devices keeping the mean wait for a device
  within ``max_wait_days``) and the break-even volume against the model's centralized price.
- :func:`twin_cost`: a twin run's KPIs (decentralized or ``twin.centralized``) priced on the same model:
  fixed + capital per open site for its devices, the variable cost per batch made, logistics per shipment
  and per hour of transport (the centralized scenario's longer legs cost more).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any

from pocare.costs import anchors, compute
from pocare.costs.compute import CostLine, CostSheet, Source, hourly_rate, money
from pocare.costs.content import CAPITAL_KEYS, FIXED_KEYS
from pocare.planning import erlang, twin

#: The role whose rate prices a step's expected hands-on time and its verification (the records price
#: the role each person held; a plan knows no person).
LABOUR_ROLE = "operator"
#: Manufacture 8–13 days, mode 10 (Zhu et al., Cytotherapy 2018; the twin's default): the device and
#: cleanroom time of a batch when no batch of the site has ended yet.
DEFAULT_PROCESS_DAYS = Decimal("10.3333")
#: Shipments per batch: the apheresis to the site and the product back to the hospital.
SHIPMENTS_PER_BATCH = 2
#: The twin's failure rates (UK panel 3.87 % out of specification; 1 % aborted on the device).
DEFAULT_FAILURE_RATE = Decimal("0.0487")
#: What the business case leaves out of the variable cost when the model states capital and fixed costs:
#: the device's and the cleanroom's hourly rates are those same costs spread per hour (never counted twice).
COVERED_BY_CAPITAL = frozenset({"equipment", "facility"})


#: The published figures drawn on the business case's chart (``costs.anchors``, one definition with the cost
#: report): per patient, in euros; the volume where the source states one.
CHART_ANCHORS = ("ari_price", "umcg", "dkfz")
ANCHOR_VOLUME = {"dkfz": 18}


def chart_anchors() -> list[tuple[str, float, int | None]]:
    """(label, € per patient, patients a year or None) of each anchor the chart draws."""
    by_key = {a.key: a for a in anchors.ANCHORS}
    return [(by_key[k].label, float(by_key[k].eur_high), ANCHOR_VOLUME.get(k)) for k in CHART_ANCHORS if k in by_key]


@dataclass(frozen=True)
class Input:
    """One figure the case uses: where it comes from (``source``), or ``estimate`` when nothing publishes it."""

    path: str
    label: str
    value: Decimal
    unit: str
    source: str = ""

    @property
    def estimate(self) -> bool:
        return not self.source


def figure(content: Mapping[str, Any], section: str, key: str | None = None) -> tuple[Decimal, str] | None:
    """A planning figure of the model (``capital.unit_price``) as (value, source or "" for an estimate)."""
    found = content.get(section)
    if key is not None:
        found = found.get(key) if isinstance(found, Mapping) else None
    if found is None:
        return None
    if isinstance(found, Mapping):
        return Decimal(str(found["value"])), str(found.get("source", ""))
    return Decimal(str(found)), ""


def _d(value: Any) -> Decimal:
    return Decimal(str(value))


def variable_cost(master: Mapping[str, Any], content: Mapping[str, Any], *, site_code: str, device_type: str,
                  process_days: Decimal = DEFAULT_PROCESS_DAYS, shipments: int = SHIPMENTS_PER_BATCH,
                  leave_out: Collection[str] = (), version_pk: int = 0, model_pk: int = 0) -> CostSheet:
    """The cost of one batch planned from the master-file version's ``master`` content and the model's
    ``content``: lines like ``costs.compute.batch_cost_lines``, each naming the master-file version
    (what is made) or the cost model (what is priced). Optional steps (skipped in most batches) are
    left out. ``leave_out``: categories not counted (the overhead is taken on what remains)."""
    sheet = CostSheet()
    version = Source("masterfile.MasterFileVersion", version_pk)
    model = Source("costs.CostModel", model_pk)

    def add(category: str, description: str, quantity: Decimal, unit: str, price: Decimal | None,
            source: Source) -> None:
        if category in leave_out:
            return
        if price is None:
            sheet.lines.append(CostLine(category, f"{description} — no price in the cost model", quantity, unit,
                                        Decimal(0), Decimal("0.00"), source, priced=False))
        else:
            sheet.lines.append(CostLine(category, description, quantity, unit, price, money(quantity * price), source))

    steps = [s for uo in master.get("process", {}).get("unit_operations", []) for s in uo.get("steps", [])
             if not s.get("optional")]
    rate = hourly_rate(content, LABOUR_ROLE, site_code)
    verification = content.get("labour", {}).get("verification_minutes")
    for step in steps:
        hours = (_d(step["expected_duration_min"]) / 60).quantize(compute.HOUR_PLACES, ROUND_HALF_UP)
        add("labour", f"Step {step['id']}: expected hands-on time ({LABOUR_ROLE})", hours, "h", rate, version)
        if step.get("second_person_verification") and verification is not None:
            add("labour", f"Step {step['id']}: second-person verification", (_d(verification) / 60).quantize(
                compute.HOUR_PLACES, ROUND_HALF_UP), "h", rate, version)
    prices = content.get("materials") or {}
    for step in steps:
        for m in step.get("materials", []):
            price = prices.get(m["code"])
            add("materials", f"{m['code']} at step {step['id']}", _d(m["quantity"]), m.get("unit", "unit"),
                _d(price) if price is not None else None, version)
    tests = content.get("qc_tests") or {}
    for attribute in (master.get("specification") or {}).get("attributes", []):
        price = tests.get(attribute["id"])
        add("qc", f"QC test {attribute['id']}", Decimal(1), "test", _d(price) if price is not None else None, version)
    hours = (process_days * 24).quantize(compute.HOUR_PLACES, ROUND_HALF_UP)
    device = (content.get("equipment", {}).get("hourly") or {}).get(device_type)
    add("equipment", f"Device ({device_type}) over {process_days.normalize():f} days", hours, "h",
        _d(device) if device is not None else None, model)
    facility = content.get("facility", {})
    room = (facility.get("site_hourly") or {}).get(site_code, facility.get("hourly"))
    add("facility", f"Cleanroom at {site_code} over the process", hours, "h",
        _d(room) if room is not None else None, model)
    review = content.get("review", {})
    if "qa_hours" in review:
        add("review", "Control Site QA review", _d(review["qa_hours"]), "h",
            hourly_rate(content, compute.QA_ROLE, site_code), model)
    if "qp_hours" in review:
        add("review", "QP certification", _d(review["qp_hours"]), "h", hourly_rate(content, compute.QP_ROLE, site_code),
            model)
    per_shipment = content.get("logistics", {}).get("per_shipment")
    add("logistics", "Shipments (apheresis in, product out)", Decimal(shipments), "shipment",
        _d(per_shipment) if per_shipment is not None else None, model)
    percent = content.get("overhead", {}).get("percent")
    if percent is not None and "overhead" not in leave_out:
        base = sheet.total
        sheet.lines.append(CostLine("overhead", f"Overhead {_d(percent).normalize():f} % of {base} EUR", base, "EUR",
                                    _d(percent) / 100, money(base * _d(percent) / 100), model))
    return sheet


#: Fewer finished batches than this at a site: its failure rate is the published default, not its own.
MIN_OBSERVED_BATCHES = 5


def failure_rate_observed(batches: int, aborted: int) -> Decimal:
    """The site's aborted share of its finished batches when it has finished at least
    :data:`MIN_OBSERVED_BATCHES` (at most 0.9), else :data:`DEFAULT_FAILURE_RATE`."""
    if batches < MIN_OBSERVED_BATCHES:
        return DEFAULT_FAILURE_RATE
    return min(Decimal("0.9"), Decimal(aborted) / batches).quantize(Decimal("0.0001"))


def devices_needed(batches_per_year: float, process_days: float, *, max_wait_days: float = 7.0) -> int:
    """The fewest devices (one batch at a time each) for which an M/M/c queue's mean wait for a device
    is at most ``max_wait_days`` (Erlang C, ``planning.erlang``); 0 for no batch."""
    if batches_per_year <= 0:
        return 0
    arrival, service = batches_per_year / 365.0, 1.0 / process_days
    c = max(1, math.ceil(arrival / service))
    while True:
        if arrival < c * service and erlang.mean_wait(c, arrival, service) <= max_wait_days:
            return c
        c += 1


@dataclass(frozen=True)
class Year:
    """One volume of the case: a year of a site treating ``patients``."""

    patients: int
    batches: Decimal
    devices: int
    units: int
    capital: Decimal
    fixed: Decimal
    variable: Decimal

    @property
    def total(self) -> Decimal:
        return self.capital + self.fixed + self.variable

    @property
    def per_patient(self) -> Decimal:
        return money(self.total / self.patients)


@dataclass(frozen=True)
class Case:
    years: list[Year]
    inputs: list[Input]
    variable_per_batch: Decimal
    batches_per_patient: Decimal
    centralized_price: Decimal | None
    break_even: int | None  # the fewest patients a year at which the cost per patient ≤ the centralized price


def annual_capital(content: Mapping[str, Any], *, units: int, devices: int) -> Decimal:
    """Straight-line depreciation a year of ``units`` prefabricated units (each with its installation) and
    ``devices`` devices; 0 when the model states no capital."""
    def value(key: str) -> Decimal:
        found = figure(content, "capital", key)
        return found[0] if found is not None else Decimal(0)

    years = figure(content, "capital", "depreciation_years")
    if years is None:
        return Decimal(0)
    spent = units * (value("unit_price") + value("installation")) + devices * value("device_price")
    return money(spent / years[0])


def annual_fixed(content: Mapping[str, Any]) -> Decimal:
    """A site's fixed cost a year: the sum of the model's ``fixed`` figures."""
    return money(sum(((figure(content, "fixed", key) or (Decimal(0), ""))[0] for key in content.get("fixed", {})),
                     Decimal(0)))


def inputs_listed(content: Mapping[str, Any]) -> list[Input]:
    """Every planning figure of the model, each with its source or marked estimate."""
    units = {"devices_per_unit": "devices", "depreciation_years": "years"}
    out = []
    for key in CAPITAL_KEYS:
        found = figure(content, "capital", key)
        if found is not None:
            out.append(Input(f"capital.{key}", key.replace("_", " "), found[0], units.get(key, "EUR"), found[1]))
    for key in FIXED_KEYS:
        found = figure(content, "fixed", key)
        if found is not None:
            out.append(Input(f"fixed.{key}", key.replace("_", " "), found[0], "EUR a year", found[1]))
    found = figure(content, "centralized_price")
    if found is not None:
        out.append(Input("centralized_price", "centralized price", found[0], "EUR a patient", found[1]))
    return out


def business_case(content: Mapping[str, Any], variable_per_batch: Decimal, *, patients: Sequence[int],
                  failure_rate: Decimal = DEFAULT_FAILURE_RATE, process_days: Decimal = DEFAULT_PROCESS_DAYS,
                  max_wait_days: float = 7.0) -> Case:
    """The cost a year and per patient of a site at each volume of ``patients`` (a year, each ≥ 1)."""
    if not Decimal(0) <= failure_rate < 1:
        raise ValueError("failure_rate: a share from 0 to below 1.")
    per_patient = Decimal(1) / (1 - failure_rate)
    found = figure(content, "capital", "devices_per_unit")
    per_unit = int(found[0]) if found is not None else 1
    fixed = annual_fixed(content)
    years = []
    for n in patients:
        if n < 1:
            raise ValueError("patients: at least 1 a year.")
        batches = n * per_patient
        devices = max(1, devices_needed(float(batches), float(process_days), max_wait_days=max_wait_days))
        units = -(-devices // per_unit)
        years.append(Year(n, batches, devices, units, annual_capital(content, units=units, devices=devices), fixed,
                          money(batches * variable_per_batch)))
    price = figure(content, "centralized_price")
    centralized = price[0] if price is not None else None
    even = next((y.patients for y in years if centralized is not None and y.per_patient <= centralized), None)
    return Case(years, inputs_listed(content), variable_per_batch,
                per_patient.quantize(Decimal("0.0001"), ROUND_CEILING), centralized, even)


@dataclass(frozen=True)
class ScenarioCost:
    """A twin scenario priced on the model: a year's costs of the network and per patient treated."""

    name: str
    open_sites: int
    devices: int
    units: int
    treated: float
    batches: float
    legs: float
    leg_hours: float
    capital: Decimal
    fixed: Decimal
    variable: Decimal
    logistics: Decimal

    @property
    def total(self) -> Decimal:
        return self.capital + self.fixed + self.variable + self.logistics

    @property
    def per_treated(self) -> Decimal | None:
        return money(self.total / Decimal(str(self.treated))) if self.treated else None


def twin_cost(name: str, kpis: Mapping[str, Any], content: Mapping[str, Any], variable_per_batch: Decimal, *,
              horizon_days: float) -> ScenarioCost:
    """One twin run (``twin.simulate``'s KPIs) priced on the model: each open site's fixed cost and the capital
    of its devices (in as many prefabricated units as they need), the variable cost (logistics left out) per
    batch made, and per transport leg the price per shipment plus its hours × the price per hour."""
    years = Decimal(str(horizon_days)) / 365
    found = figure(content, "capital", "devices_per_unit")
    per_unit = int(found[0]) if found is not None else 1
    open_sites = [s for s in kpis["sites"] if s["units"] > 0]
    capital = fixed = Decimal(0)
    units = 0
    for site in open_sites:
        site_units = -(-int(site["units"]) // per_unit)
        units += site_units
        capital += annual_capital(content, units=site_units, devices=int(site["units"])) * years
        fixed += annual_fixed(content) * years
    logistics_prices = content.get("logistics", {})
    legs, hours = float(kpis.get("transport_legs", 0)), float(kpis.get("leg_hours", 0.0))
    logistics = (Decimal(str(legs)) * _d(logistics_prices.get("per_shipment", 0))
                 + Decimal(str(hours)) * _d(logistics_prices.get("per_hour", 0)))
    return ScenarioCost(name, len(open_sites), sum(int(s["units"]) for s in open_sites), units,
                        float(kpis["treated"]), float(kpis["batches"]), legs, hours, money(capital), money(fixed),
                        money(Decimal(str(kpis["batches"])) * variable_per_batch), money(logistics))


def capital_stated(content: Mapping[str, Any]) -> bool:
    """Whether the model states the capital that the device and cleanroom hourly rates otherwise spread."""
    capital = content.get("capital") or {}
    return "depreciation_years" in capital and ("unit_price" in capital or "device_price" in capital)


@dataclass(frozen=True)
class SiteCase:
    """A site's case: the batch planned with every line (to compare with a batch's records), the lines the
    case counts, and the case itself."""

    planned: CostSheet
    counted: CostSheet
    case: Case
    process_days: Decimal
    failure_rate: Decimal


def site_case(content: Mapping[str, Any], master: Mapping[str, Any], *, site_code: str, device_type: str,
              patients_max: int, failure_rate: Decimal = DEFAULT_FAILURE_RATE,
              process_days: Decimal = DEFAULT_PROCESS_DAYS, max_wait_days: float = 7.0, version_pk: int = 0,
              model_pk: int = 0) -> SiteCase:
    """The business case of one site for 1..``patients_max`` patients a year."""
    common: dict[str, Any] = {"site_code": site_code, "device_type": device_type, "process_days": process_days,
                              "version_pk": version_pk, "model_pk": model_pk}
    planned = variable_cost(master, content, **common)
    counted = variable_cost(master, content, leave_out=COVERED_BY_CAPITAL if capital_stated(content) else (),
                            **common)
    case = business_case(content, counted.total, patients=range(1, patients_max + 1), failure_rate=failure_rate,
                         process_days=process_days, max_wait_days=max_wait_days)
    return SiteCase(planned, counted, case, process_days, failure_rate)


def twin_comparison(content: Mapping[str, Any], master: Mapping[str, Any], *, sites: int, patients_per_site: float,
                    device_type: str, seed: int = 1, extra_hours: float = 0.0) -> list[ScenarioCost]:
    """A short twin run (one year, one replication, the same seed): ``sites`` sites with two devices each,
    decentralized, then every device at one hub (``twin.centralized``); both priced on the one model."""
    base = twin.synthetic_network(sites=sites, referrals_per_year=patients_per_site * sites, units_per_site=2,
                                  seed=seed)
    leave = {"logistics"} | (COVERED_BY_CAPITAL if capital_stated(content) else set())
    variable = variable_cost(master, content, site_code="", device_type=device_type, leave_out=leave).total
    central = twin.centralized(base, base.sites[0].code, extra_hours=extra_hours)
    out = []
    for name, config in (("decentralized", base), ("centralized", central)):
        kpis = twin.simulate(config, seed)
        out.append(twin_cost(name, kpis, content, variable, horizon_days=config.horizon_days))
    return out


@dataclass(frozen=True)
class RunPrice:
    """A twin study's scenario priced on the model: means over its replications."""

    name: str
    replications: int
    per_treated: Decimal | None
    capital: Decimal
    fixed: Decimal
    variable: Decimal
    logistics: Decimal


def run_prices(result: Mapping[str, Any], content: Mapping[str, Any], master: Mapping[str, Any], *,
               device_type: str) -> list[RunPrice]:
    """Each scenario of a finished twin study (``study.twin_study``'s result: the baseline and, say,
    ``centralized``) priced with :func:`twin_cost` replication by replication, then averaged. Empty for a run
    made before the twin reported its transport legs (nothing to price them from)."""
    leave = {"logistics"} | (COVERED_BY_CAPITAL if capital_stated(content) else set())
    variable = variable_cost(master, content, site_code="", device_type=device_type, leave_out=leave).total
    horizon = float(result.get("parameters", {}).get("horizon_days", 365.0))
    out = []
    for scenario in result.get("scenarios", []):
        runs = scenario.get("replications") or []
        if not runs or any("transport_legs" not in r for r in runs):
            return []
        priced = [twin_cost(scenario["name"], {**r, "sites": scenario["sites"]}, content, variable,
                            horizon_days=horizon) for r in runs]
        per = [p.per_treated for p in priced if p.per_treated is not None]
        n = Decimal(len(priced))
        out.append(RunPrice(scenario["name"], len(priced), money(sum(per, Decimal(0)) / len(per)) if per else None,
                            money(sum((p.capital for p in priced), Decimal(0)) / n),
                            money(sum((p.fixed for p in priced), Decimal(0)) / n),
                            money(sum((p.variable for p in priced), Decimal(0)) / n),
                            money(sum((p.logistics for p in priced), Decimal(0)) / n)))
    return out
