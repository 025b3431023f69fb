"""The digital twin: a discrete-event simulation (SimPy) of the POCare network from referral to
infusion. Referrals arrive per region (Poisson); eligibility; a manufacturing slot is booked on a unit
at the nearest open site (the queue); apheresis; transport to the site; manufacture on the unit
(duration distribution; aborts); QC turnaround; release (out of specification → re-manufacture);
transport back; infusion. Patients progress (and are lost) while they wait. Scenarios change the
configuration: centralized or decentralized, sites and units added or removed, a site outage, a
supply disruption of a critical material (or of a supplier: the materials only it supplies) for N weeks,
met by the sites' own stock, then their regional depot's shared pool, then a wait for resupply (the
disruption's end plus the lead time). No Django import (a library module).

Common random numbers: each region's arrivals and each referral draw from a stream of their own, seeded
from the replication's seed and their name (:meth:`Twin.stream`), so two configurations run on one seed
give the n-th referral of a region the same arrival and the same draws whatever else the scenario changes.

Default numbers and their sources (DOMAIN.md):
* manufacture 8–13 days, mode 10 (Zhu et al., Cytotherapy 2018;20:394 — "whole process 8–13 days");
* QC turnaround for fresh release 1–2 days (VCN by qPCR/ddPCR 1–2 d; sterility finalized after
  release, PMC11461191);
* manufacturing failure 3.87 % (UK national panel 2019–23, Blood Cancer J 2025), re-manufacture in
  spec in ~50 % (same source) — used as the out-of-specification rate at release with one retry that
  succeeds with the panel's 50 % (the retry is a fresh manufacture, so it is drawn again); batch
  aborts on the device default to 1 % (axi-cel pivotal failure, Front Immunol 2021;12:718621);
* progression while waiting: a constant hazard λ with 1 − e^(−107 λ) = 0.41 — 41 % of referred
  patients never treated with a median 107 days referral-to-apheresis in a US community network
  (Blood Adv 2025;9:429) — λ ≈ 0.0049 per day *(estimate derived from that figure)*;
* costs: production €55,000 per batch (DOMAIN: €50–60k), pathway €52,500 per patient reaching
  apheresis (Italian pathway €48–57k excluding the product, Cavallo et al., BMC Health Serv Res 2024),
  site €131,000 per year (the €1.31 M set-up over 10 years *(estimate)*), transport €1,500 per leg
  *(estimate)*;
* capacity: one device runs one batch at a time (DOMAIN: about 2–3 batches per device per month).
Numbers marked *(estimate)* are planning assumptions; every one is a field of :class:`TwinConfig`.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import simpy

PROGRESSION_PER_DAY = -math.log(1 - 0.41) / 107.0  # Blood Adv 2025;9:429 (estimate derived, see above)


@dataclass(frozen=True)
class Dist:
    """A duration in days: ``fixed`` (mean), ``exponential`` (mean), ``triangular`` (low, mode, high),
    ``lognormal`` (mean, sigma of the log) or ``empirical`` (values, e.g. observed in batch records)."""

    kind: str = "fixed"
    mean: float = 0.0
    low: float = 0.0
    mode: float = 0.0
    high: float = 0.0
    sigma: float = 0.0
    values: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("fixed", "exponential", "triangular", "lognormal", "empirical"):
            raise ValueError(f"distribution kind {self.kind!r} unknown.")
        if self.kind == "triangular" and not self.low <= self.mode <= self.high:
            raise ValueError("triangular: need low ≤ mode ≤ high.")
        if self.kind == "empirical" and not self.values:
            raise ValueError("empirical: needs observed values.")
        if self.mean < 0 or self.low < 0 or any(v < 0 for v in self.values):
            raise ValueError("durations must be ≥ 0.")

    def sample(self, rng: random.Random) -> float:
        if self.kind == "fixed":
            return self.mean
        if self.kind == "exponential":
            return rng.expovariate(1.0 / self.mean) if self.mean > 0 else 0.0
        if self.kind == "triangular":
            return rng.triangular(self.low, self.high, self.mode)
        if self.kind == "lognormal":
            mu = math.log(self.mean) - self.sigma ** 2 / 2 if self.mean > 0 else 0.0
            return rng.lognormvariate(mu, self.sigma) if self.mean > 0 else 0.0
        return self.values[rng.randrange(len(self.values))]

    @property
    def average(self) -> float:
        if self.kind == "triangular":
            return (self.low + self.mode + self.high) / 3
        if self.kind == "empirical":
            return statistics.fmean(self.values)
        return self.mean


@dataclass(frozen=True)
class SiteSpec:
    """A manufacturing site: units (devices, one batch at a time each) and outages (day ranges)."""

    code: str
    units: int
    latitude: float = 0.0
    longitude: float = 0.0
    outages: tuple[tuple[float, float], ...] = ()
    #: Stock of critical materials at the site, in kits (batches' worth) per material code.
    kits: Mapping[str, float] = field(default_factory=dict)

    def closed_until(self, now: float) -> float:
        for start, end in self.outages:
            if start <= now < end:
                return end
        return now


@dataclass(frozen=True)
class RegionSpec:
    """Where referrals come from: referrals per year and transport hours to each site."""

    name: str
    referrals_per_year: float
    hours_to_site: Mapping[str, float]
    latitude: float = 0.0
    longitude: float = 0.0


@dataclass(frozen=True)
class DepotSpec:
    """A regional depot: a pool of kits per material shared by the sites it serves (first come)."""

    code: str
    serves: tuple[str, ...]
    kits: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Disruption:
    """A critical material (e.g. lentiviral vector) not delivered from ``start_day`` for ``weeks`` at
    the affected sites (all if ``sites`` is empty). Meanwhile, and until the first delivery after it
    (the end plus the material's lead time), each batch start takes one kit: the site's own first,
    then its depot's pool; with neither, the batch waits for that delivery."""

    material: str
    start_day: float
    weeks: float
    sites: tuple[str, ...] = ()

    @property
    def end(self) -> float:
        return self.start_day + 7 * self.weeks

    def affects(self, site: str) -> bool:
        return not self.sites or site in self.sites


@dataclass(frozen=True)
class TwinConfig:
    """Everything the twin needs; JSON round-trips with :func:`config_to_dict` / :func:`config_from_dict`."""

    sites: tuple[SiteSpec, ...]
    regions: tuple[RegionSpec, ...]
    horizon_days: float = 365.0
    warmup_days: float = 0.0
    drain_days: float = 180.0
    poisson: bool = True
    eligible_share: float = 0.85  # *(estimate)*
    eligibility: Dist = Dist("triangular", low=3, mode=7, high=14)  # *(estimate)*
    apheresis: Dist = Dist("triangular", low=2, mode=4, high=7)  # slot to apheresis *(estimate)*
    handling_hours: float = 4.0  # courier hand-over per leg *(estimate)*
    manufacture: Dist = Dist("triangular", low=8, mode=10, high=13)  # Zhu 2018
    abort_rate: float = 0.01  # Front Immunol 2021;12:718621 (axi-cel)
    qc: Dist = Dist("triangular", low=1, mode=1.5, high=2)  # PMC11461191 fresh release
    oos_rate: float = 0.0387  # UK panel, Blood Cancer J 2025
    remanufacture_success: float = 0.5  # UK panel, Blood Cancer J 2025
    max_attempts: int = 2
    infusion: Dist = Dist("triangular", low=2, mode=3, high=5)  # lymphodepletion to infusion *(estimate)*
    progression_per_day: float = PROGRESSION_PER_DAY
    cost_batch: float = 55_000.0
    cost_pathway: float = 52_500.0
    cost_site_year: float = 131_000.0
    cost_transport_leg: float = 1_500.0
    disruptions: tuple[Disruption, ...] = ()
    depots: tuple[DepotSpec, ...] = ()
    #: Days from a disruption's end to the first delivery (per material in ``lead_times``; 0 in the
    #: configurations made before stock: supply resumes the day the disruption ends).
    lead_time_days: float = 0.0
    lead_times: Mapping[str, float] = field(default_factory=dict)
    #: Supplier → the materials only it supplies (what stops when the supplier does).
    suppliers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    hold_unit_from_booking: bool = True  # a booked slot blocks the unit from apheresis on
    sample_limit: int = 5000

    def __post_init__(self) -> None:
        if not self.sites:
            raise ValueError("sites: the network needs at least one site.")
        codes = {s.code for s in self.sites}
        if len(codes) != len(self.sites):
            raise ValueError("sites: site codes must be unique.")
        for s in self.sites:
            if s.units < 0:
                raise ValueError(f"units of {s.code}: must be ≥ 0.")
        for r in self.regions:
            if r.referrals_per_year < 0:
                raise ValueError(f"referrals of {r.name}: must be ≥ 0.")
            if not set(r.hours_to_site) & codes:
                raise ValueError(f"region {r.name}: no transport time to any site.")
        for name in ("eligible_share", "abort_rate", "oos_rate", "remanufacture_success"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}: use a share between 0 and 1.")
        if self.horizon_days <= 0 or self.warmup_days < 0 or self.warmup_days >= self.horizon_days:
            raise ValueError("horizon_days must be > warmup_days ≥ 0.")
        self._check_stock(codes)

    def _check_stock(self, codes: set[str]) -> None:
        """Kits are finite and ≥ 0, depots serve sites of the network, lead times 0–365 days."""
        def kits(where: str, values: Mapping[str, float]) -> None:
            for material, n in values.items():
                if not (math.isfinite(n) and n >= 0):
                    raise ValueError(f"kits of {material} at {where}: a finite number ≥ 0.")

        for s in self.sites:
            kits(s.code, s.kits)
        if len({d.code for d in self.depots}) != len(self.depots):
            raise ValueError("depots: depot codes must be unique.")
        for d in self.depots:
            kits(d.code, d.kits)
            if not d.serves or set(d.serves) - codes:
                raise ValueError(f"depot {d.code}: serves sites of the network only (and at least one).")
        for value in (self.lead_time_days, *self.lead_times.values()):
            if not (math.isfinite(value) and 0 <= value <= 365):
                raise ValueError("lead_time_days: between 0 and 365 days.")
        for x in self.disruptions:
            if not (math.isfinite(x.weeks) and x.weeks >= 0 and math.isfinite(x.start_day) and x.start_day >= 0):
                raise ValueError("disruptions: a start day ≥ 0 and weeks ≥ 0.")

    def lead_time(self, material: str) -> float:
        return float(self.lead_times.get(material, self.lead_time_days))


def config_to_dict(config: TwinConfig) -> dict[str, Any]:
    return asdict(config)


def config_from_dict(data: Mapping[str, Any]) -> TwinConfig:
    d = dict(data)

    def dist(v: Any) -> Dist:
        if isinstance(v, Dist):
            return v
        v = dict(v)
        v["values"] = tuple(v.get("values", ()))
        return Dist(**v)

    d["sites"] = tuple(s if isinstance(s, SiteSpec) else SiteSpec(**{**s, "outages": tuple(
        tuple(o) for o in s.get("outages", ())), "kits": dict(s.get("kits", {}))}) for s in d["sites"])
    d["depots"] = tuple(x if isinstance(x, DepotSpec) else DepotSpec(
        **{**x, "serves": tuple(x.get("serves", ())), "kits": dict(x.get("kits", {}))}) for x in d.get("depots", ()))
    d["suppliers"] = {str(k): tuple(v) for k, v in dict(d.get("suppliers", {})).items()}
    d["lead_times"] = dict(d.get("lead_times", {}))
    d["regions"] = tuple(r if isinstance(r, RegionSpec) else RegionSpec(**r) for r in d["regions"])
    d["disruptions"] = tuple(x if isinstance(x, Disruption) else Disruption(**{**x, "sites": tuple(x.get("sites", ()))})
                             for x in d.get("disruptions", ()))
    for key in ("eligibility", "apheresis", "manufacture", "qc", "infusion"):
        if key in d:
            d[key] = dist(d[key])
    fields = TwinConfig.__dataclass_fields__
    unknown = set(d) - set(fields)
    if unknown:
        raise ValueError(f"twin configuration: unknown field(s) {', '.join(sorted(unknown))}.")
    return TwinConfig(**d)


@dataclass
class _SiteState:
    spec: SiteSpec
    units: simpy.Resource | None
    busy: float = 0.0
    batches: int = 0
    queue_samples: list[int] = field(default_factory=list)


@dataclass
class _Tally:
    referred: int = 0
    ineligible: int = 0
    treated: int = 0
    lost_progression: int = 0
    lost_waiting: int = 0  # of lost_progression: while waiting for a manufacturing slot (capacity)
    lost_failure: int = 0
    lost_supply: int = 0  # of lost_progression: while a batch waited for a disrupted material
    delayed_supply: int = 0  # patients whose batch waited for a disrupted material
    supply_wait: float = 0.0  # days those batches waited, in all
    kits_site: int = 0  # kits taken during disruptions from the sites' own stock
    kits_depot: int = 0  # ... and from the depots' pools
    in_pipeline: int = 0
    transport_hours: float = 0.0  # one way, per patient routed to a site (travel)
    routed: int = 0
    batches: int = 0
    transport_legs: int = 0
    leg_hours: float = 0.0  # hours of every leg (hospital ↔ site and the hand-over), priced per hour
    pathways: int = 0
    v2v: list[float] = field(default_factory=list)
    r2i: list[float] = field(default_factory=list)
    slot_wait: list[float] = field(default_factory=list)


class _Lost(Exception):
    pass


@dataclass
class _Journey:
    """One patient on the way: where they come from, when referred, when their disease will have
    progressed past treatment, whether they count (referred after the warm-up), and the site and
    transport hours of the current attempt, and the patient's own random stream (every draw about them)."""

    region: RegionSpec
    referred: float
    counted: bool
    progression: float
    site: str = ""
    hours: float = 0.0
    apheresis_at: float | None = None
    delayed: bool = False
    rng: random.Random = field(default_factory=random.Random, repr=False)


class Twin:
    """One replication of the network."""

    def __init__(self, config: TwinConfig, seed: int) -> None:
        self.c = config
        self.seed = seed
        self.referrals: dict[str, int] = {}
        self.env = simpy.Environment()
        self.sites = {s.code: _SiteState(s, simpy.Resource(self.env, capacity=s.units) if s.units > 0 else None)
                      for s in config.sites}
        self.t = _Tally()
        self.weekly_queue: list[list[int]] = []
        self.kits = {(s.code, m): math.floor(n) for s in config.sites for m, n in s.kits.items()}
        self.pools = {(d.code, m): math.floor(n) for d in config.depots for m, n in d.kits.items()}
        self.depot_of: dict[str, str] = {}
        for d in config.depots:
            for code in d.serves:
                self.depot_of.setdefault(code, d.code)
        self._route: dict[str, list[tuple[float, str]]] = {
            r.name: sorted((h, code) for code, h in r.hours_to_site.items()
                           if code in self.sites and self.sites[code].units is not None)
            for r in config.regions}

    # -- processes ---------------------------------------------------------------------------
    def _arrivals(self, region: RegionSpec) -> Any:
        rate = region.referrals_per_year / 365.0
        if rate <= 0:
            return
        env, rng = self.env, self.stream("arrivals", region.name)
        while True:
            gap = rng.expovariate(rate) if self.c.poisson else 1.0 / rate
            yield env.timeout(gap)
            if env.now >= self.c.horizon_days:
                return
            env.process(self._patient(region))

    def stream(self, *names: object) -> random.Random:
        """The random stream of one thing of this replication (a region's arrivals, one patient), seeded
        from the replication's seed and the thing's name. Common random numbers: two configurations run
        on one seed give the n-th referral of a region the same arrival and the same draws (eligibility,
        durations, failures, progression), whatever order the events of the two runs take — so that two
        scenarios differ by what the scenario changes alone (a string seed is hashed with SHA-512,
        the same in every process)."""
        return random.Random("/".join(map(str, (self.seed, *names))))  # noqa: S311 - simulation, not cryptography

    def _site_for(self, region: RegionSpec) -> tuple[str, float, float]:
        """Nearest site (by transport hours) open now; if all are closed, the one reopening first."""
        now = self.env.now
        options = self._route[region.name]
        for hours, code in options:
            if self.sites[code].spec.closed_until(now) <= now:
                return code, hours, now
        hours, code = min(options, key=lambda o: (self.sites[o[1]].spec.closed_until(now), o[0]))
        return code, hours, self.sites[code].spec.closed_until(now)

    def _blocked_until(self, code: str, now: float) -> float:
        return self.sites[code].spec.closed_until(now)

    def _short(self, code: str, now: float) -> tuple[list[tuple[str, str]], float]:
        """The kits a batch starting now at ``code`` takes (place, material) and, when one material
        has none left at the site or its depot, the day its next delivery comes (else ``now``)."""
        take: list[tuple[str, str]] = []
        back = now
        depot = self.depot_of.get(code)
        for d in self.c.disruptions:
            resupply = d.end + self.c.lead_time(d.material)
            if not (d.affects(code) and d.start_day <= now < resupply) or (code, d.material) in take:
                continue
            if self.kits.get((code, d.material), 0) - take.count((code, d.material)) >= 1:
                take.append((code, d.material))
            elif depot is not None and self.pools.get((depot, d.material), 0) - take.count((depot, d.material)) >= 1:
                take.append((depot, d.material))
            else:
                back = max(back, resupply)
        return take, back

    def _wait_for_material(self, journey: _Journey) -> Any:
        """Take a kit of each disrupted material (site first, then depot), or wait for the delivery
        after the disruption — the patient lost if the disease progresses meanwhile."""
        env, t = self.env, self.t
        while True:
            take, back = self._short(journey.site, env.now)
            if back <= env.now:
                break
            if journey.counted and not journey.delayed:
                journey.delayed = True
                t.delayed_supply += 1
            start = env.now
            wait = min(back, journey.progression) - env.now
            yield env.timeout(max(0.0, wait))
            if journey.counted:
                t.supply_wait += env.now - start
            if env.now >= journey.progression:
                t.lost_supply += journey.counted
                raise _Lost
            yield from self._wait_unblocked(journey.site)
        for place, material in take:
            if place == journey.site:
                self.kits[(place, material)] -= 1
                t.kits_site += 1
            else:
                self.pools[(place, material)] -= 1
                t.kits_depot += 1

    def _patient(self, region: RegionSpec) -> Any:
        """One patient from referral to infusion; lost on the way if the disease progresses first."""
        journey = self._refer(region)
        try:
            if (yield from self._eligible(journey)) and (yield from self._manufacture(journey)):
                yield from self._infuse(journey)
        except _Lost:
            self.t.lost_progression += journey.counted
        finally:
            self.t.in_pipeline -= 1

    def _refer(self, region: RegionSpec) -> _Journey:
        """The referral: the moment the disease will have progressed past treatment is drawn now."""
        c, now = self.c, self.env.now
        n = self.referrals[region.name] = self.referrals.get(region.name, 0) + 1
        rng = self.stream("patient", region.name, n)
        progression = now + (rng.expovariate(c.progression_per_day) if c.progression_per_day > 0 else math.inf)
        journey = _Journey(region=region, referred=now, counted=now >= c.warmup_days, progression=progression,
                           rng=rng)
        self.t.referred += journey.counted
        self.t.in_pipeline += 1
        return journey

    def _still_treatable(self, journey: _Journey) -> None:
        """Raises :class:`_Lost` once the disease has progressed."""
        if self.env.now >= journey.progression:
            raise _Lost

    def _eligible(self, journey: _Journey) -> Any:
        """The eligibility work-up; False (and counted) when the patient is not eligible."""
        yield self.env.timeout(self.c.eligibility.sample(journey.rng))
        if journey.rng.random() >= self.c.eligible_share:
            self.t.ineligible += journey.counted
            return False
        self._still_treatable(journey)
        return True

    def _manufacture(self, journey: _Journey) -> Any:
        """Manufacture until a batch passes release; a failed batch is made again (up to
        ``max_attempts``, each retry succeeding with ``remanufacture_success``). False when lost to failure."""
        c = self.c
        for attempt in itertools.count(1):  # the first attempt runs whatever max_attempts says
            site, request = yield from self._slot(journey, first=attempt == 1)
            aborted = yield from self._batch(journey, site, request, first=attempt == 1)
            if not aborted and (yield from self._released(journey)):
                return True
            if attempt >= c.max_attempts or journey.rng.random() >= c.remanufacture_success:
                break
            self._still_treatable(journey)
        self.t.lost_failure += journey.counted
        return False

    def _slot(self, journey: _Journey, *, first: bool) -> Any:
        """A unit at the nearest open site, waited for (and lost if the disease progresses meanwhile)."""
        env, t = self.env, self.t
        journey.site, journey.hours, opens = self._site_for(journey.region)
        if opens > env.now:
            yield env.timeout(opens - env.now)
        site = self.sites[journey.site]
        assert site.units is not None
        if journey.counted and first:
            t.routed += 1
            t.transport_hours += journey.hours + self.c.handling_hours
        asked = env.now
        request = site.units.request()
        if journey.progression < math.inf:
            got = yield request | env.timeout(max(0.0, journey.progression - env.now))
            if request not in got:
                request.cancel()
                t.lost_waiting += journey.counted
                raise _Lost
        else:
            yield request
        if journey.counted and first:
            t.slot_wait.append(env.now - asked)
        return site, request

    def _batch(self, journey: _Journey, site: _SiteState, request: Any, *, first: bool) -> Any:
        """Apheresis (first attempt only), transport to the site, any block, manufacture: the unit is
        held throughout and its busy time counted within the horizon. True when the batch aborted."""
        env, c = self.env, self.c
        held_from = env.now
        try:
            yield env.timeout(c.apheresis.sample(journey.rng) if first else 0.0)
            if first:
                journey.apheresis_at = env.now
                self.t.pathways += 1
            yield from self._transport(journey)
            yield from self._wait_unblocked(journey.site)
            yield from self._wait_for_material(journey)
            self.t.batches += 1
            site.batches += 1
            yield env.timeout(c.manufacture.sample(journey.rng))
            return journey.rng.random() < c.abort_rate
        finally:
            site.busy += min(env.now, c.horizon_days) - min(held_from, c.horizon_days)
            assert site.units is not None
            site.units.release(request)

    def _transport(self, journey: _Journey) -> Any:
        """One leg between the hospital and the site."""
        yield self.env.timeout((journey.hours + self.c.handling_hours) / 24.0)
        self.t.transport_legs += 1
        self.t.leg_hours += journey.hours + self.c.handling_hours

    def _wait_unblocked(self, code: str) -> Any:
        """Wait while the site is closed."""
        blocked = self._blocked_until(code, self.env.now)
        while blocked > self.env.now:
            yield self.env.timeout(blocked - self.env.now)
            blocked = self._blocked_until(code, self.env.now)

    def _released(self, journey: _Journey) -> Any:
        """QC turnaround; True when the batch is within specification."""
        yield self.env.timeout(self.c.qc.sample(journey.rng))
        return journey.rng.random() >= self.c.oos_rate

    def _infuse(self, journey: _Journey) -> Any:
        """Transport back, lymphodepletion and infusion; counted as treated if the disease has not
        progressed by then."""
        yield from self._transport(journey)
        yield self.env.timeout(self.c.infusion.sample(journey.rng))
        self._still_treatable(journey)
        t = self.t
        if journey.counted:
            t.treated += 1
            assert journey.apheresis_at is not None
            if len(t.v2v) < self.c.sample_limit:
                t.v2v.append(self.env.now - journey.apheresis_at)
                t.r2i.append(self.env.now - journey.referred)

    def _monitor(self, progress: Callable[[float], None] | None) -> Any:
        end = self.c.horizon_days + self.c.drain_days
        day = 0
        while True:
            if self.env.now < self.c.horizon_days:
                for s in self.sites.values():
                    s.queue_samples.append(len(s.units.queue) if s.units is not None else 0)
                if day % 7 == 0:
                    self.weekly_queue.append([len(s.units.queue) if s.units is not None else 0
                                              for s in self.sites.values()])
            if progress is not None and day % 7 == 0:
                progress(min(1.0, self.env.now / end))
            day += 1
            yield self.env.timeout(1.0)

    # -- run ---------------------------------------------------------------------------------
    def run(self, progress: Callable[[float], None] | None = None) -> dict[str, Any]:
        for region in self.c.regions:
            self.env.process(self._arrivals(region))
        self.env.process(self._monitor(progress))
        self.env.run(until=self.c.horizon_days + self.c.drain_days)
        if progress is not None:
            progress(1.0)
        return self._kpis()

    def _kpis(self) -> dict[str, Any]:
        c, t = self.c, self.t
        sites: list[dict[str, Any]]
        span = c.horizon_days - c.warmup_days
        years = c.horizon_days / 365.0
        cost = (t.batches * c.cost_batch + t.pathways * c.cost_pathway + t.transport_legs * c.cost_transport_leg
                + sum(1 for s in c.sites if s.units > 0) * c.cost_site_year * years)
        sites = []
        for code, s in self.sites.items():
            units = s.spec.units
            sites.append({"site": code, "units": units, "batches": s.batches,
                          "utilization": s.busy / (units * c.horizon_days) if units else 0.0,
                          "queue_mean": statistics.fmean(s.queue_samples) if s.queue_samples else 0.0,
                          "queue_max": max(s.queue_samples, default=0)})
        return {
            "referred": t.referred, "ineligible": t.ineligible, "treated": t.treated,
            "lost_progression": t.lost_progression, "lost_waiting": t.lost_waiting, "lost_failure": t.lost_failure,
            "lost_supply": t.lost_supply, "delayed_supply": t.delayed_supply, "supply_wait_days": t.supply_wait,
            "supply_wait_mean": t.supply_wait / t.delayed_supply if t.delayed_supply else 0.0,
            "kits_site": t.kits_site, "kits_depot": t.kits_depot,
            "transport_hours_mean": t.transport_hours / t.routed if t.routed else None,
            "unfinished": t.referred - t.ineligible - t.treated - t.lost_progression - t.lost_failure,
            "share_treated": t.treated / t.referred if t.referred else 0.0,
            "v2v_median": _q(t.v2v, 0.5), "v2v_p90": _q(t.v2v, 0.9),
            "r2i_median": _q(t.r2i, 0.5), "r2i_p90": _q(t.r2i, 0.9),
            "slot_wait_mean": statistics.fmean(t.slot_wait) if t.slot_wait else 0.0,
            "slot_waits": len(t.slot_wait),
            "utilization": (sum(s.busy for s in self.sites.values())
                            / max(1e-9, sum(s.spec.units for s in self.sites.values()) * c.horizon_days)),
            "queue_mean": statistics.fmean(float(x["queue_mean"]) for x in sites),
            "cost_total": cost, "cost_per_treated": cost / t.treated if t.treated else None,
            "batches": t.batches, "transport_legs": t.transport_legs, "leg_hours": t.leg_hours,
            "sites": sites, "weekly_queue": self.weekly_queue,
            "v2v_sample": [round(v, 3) for v in t.v2v], "r2i_sample": [round(v, 3) for v in t.r2i],
            "span_days": span,
        }


def _q(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def simulate(config: TwinConfig | Mapping[str, Any], seed: int,
             progress: Callable[[float], None] | None = None) -> dict[str, Any]:
    """Run one replication with a given integer seed; returns its KPIs (JSON-serialisable)."""
    cfg = config if isinstance(config, TwinConfig) else config_from_dict(config)
    return Twin(cfg, seed).run(progress)


# -- scenarios ---------------------------------------------------------------------------------

def mmc_config(*, servers: int, arrival_per_day: float, service_mean_days: float, horizon_days: float,
               warmup_days: float = 0.0) -> TwinConfig:
    """The twin reduced to an M/M/c queue: Poisson referrals, all eligible, exponential manufacture
    on c units, nothing else takes time, nobody fails or progresses. Validated against Erlang C."""
    zero = Dist("fixed", mean=0.0)
    return TwinConfig(
        sites=(SiteSpec("Q", servers),), regions=(RegionSpec("R", arrival_per_day * 365.0, {"Q": 0.0}),),
        horizon_days=horizon_days, warmup_days=warmup_days, drain_days=0.0, eligible_share=1.0,
        eligibility=zero, apheresis=zero, handling_hours=0.0,
        manufacture=Dist("exponential", mean=service_mean_days), abort_rate=0.0, qc=zero, oos_rate=0.0,
        infusion=zero, progression_per_day=0.0, sample_limit=0)


def centralized(config: TwinConfig, hub: str, *, extra_hours: float = 0.0) -> TwinConfig:
    """All units of the network moved to one hub site; every region ships there."""
    units = sum(s.units for s in config.sites)
    hub_spec = next((s for s in config.sites if s.code == hub), None)
    if hub_spec is None:
        raise ValueError(f"hub: {hub!r} is not a site of the network.")
    sites = tuple(replace(s, units=units if s.code == hub else 0) for s in config.sites)
    regions = tuple(replace(r, hours_to_site={hub: r.hours_to_site.get(hub, max(r.hours_to_site.values()))
                                              + extra_hours}) for r in config.regions)
    return replace(config, sites=sites, regions=regions)


def with_units(config: TwinConfig, site: str, units: int) -> TwinConfig:
    """Add or remove units at a site (0 closes its manufacturing)."""
    if site not in {s.code for s in config.sites}:
        raise ValueError(f"site: {site!r} is not a site of the network.")
    return replace(config, sites=tuple(replace(s, units=units) if s.code == site else s for s in config.sites))


def with_outage(config: TwinConfig, site: str, start_day: float, days: float) -> TwinConfig:
    if site not in {s.code for s in config.sites}:
        raise ValueError(f"site: {site!r} is not a site of the network.")
    return replace(config, sites=tuple(replace(s, outages=(*s.outages, (start_day, start_day + days)))
                                       if s.code == site else s for s in config.sites))


def with_disruption(config: TwinConfig, material: str, start_day: float, weeks: float,
                    sites: Sequence[str] = ()) -> TwinConfig:
    return replace(config, disruptions=(*config.disruptions, Disruption(material, start_day, weeks, tuple(sites))))


def supply_disruption(config: TwinConfig, *, start_day: float, weeks: float, material: str = "",
                      supplier: str = "") -> TwinConfig:
    """A material, or every material only ``supplier`` supplies, not delivered for ``weeks`` from
    ``start_day`` at every site. Refuses (naming the field) an unknown supplier, weeks outside 1–104
    and a start outside the horizon."""
    if not (math.isfinite(weeks) and 1 <= weeks <= 104):
        raise ValueError("weeks: between 1 and 104.")
    if not (math.isfinite(start_day) and 0 <= start_day < config.horizon_days):
        raise ValueError(f"start_day: a day of the horizon, 0 to {config.horizon_days:.0f}.")
    if supplier:
        if supplier not in config.suppliers:
            known = ", ".join(sorted(config.suppliers)) or "none in this network"
            raise ValueError(f"supplier: {supplier!r} is the only supplier of no material here (known: {known}).")
        materials: tuple[str, ...] = config.suppliers[supplier]
    elif material:
        materials = (material,)
    else:
        raise ValueError("material: name a material or a supplier.")
    return replace(config, disruptions=(*config.disruptions,
                                        *(Disruption(m, start_day, weeks) for m in materials)))


def without_depots(config: TwinConfig) -> TwinConfig:
    """The same network with every depot emptied: the sites have only their own stock."""
    return replace(config, depots=tuple(replace(d, kits={}) for d in config.depots))


def synthetic_network(*, sites: int, referrals_per_year: float, units_per_site: int = 2, seed: int = 0,
                      hours_scale: float = 3.0) -> TwinConfig:
    """A network of ``sites`` sites with one referring region per site (for benchmarks and tests):
    each region is nearest its own site, farther from the others."""
    rng = random.Random(seed)  # noqa: S311 - simulation, not cryptography
    specs = tuple(SiteSpec(f"S{i:02d}", units_per_site) for i in range(sites))
    regions = tuple(RegionSpec(f"R{i:02d}", referrals_per_year / sites,
                               {s.code: (0.5 + rng.random()) if j == i else hours_scale * (1 + rng.random() * 3)
                                for j, s in enumerate(specs)}) for i in range(sites))
    return TwinConfig(sites=specs, regions=regions)
