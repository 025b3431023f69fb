"""Benchmark of every page and API list at network scale: 10,000 batches and 2,000,000 ledger events.

Builds (or reuses) a PostgreSQL database of its own (``bench_pages``) holding the demo network with
at least ``--batches`` batches of history and at least ``--events`` ledger events, then GETs every
page of the web UI and every API endpoint that answers GET, ``--repeat`` times each after a warm-up,
through Django's test ``Client`` in this process (the whole middleware and view stack; no server, no
network), logged in as a role that may read the page. Reports per URL: p50, p95, queries, bytes and
PASS/MISS against 200 ms (issue 15), as a markdown table.

**The data.** ``pocare.demo.loader.load`` with more units per site (``extra_units_per_site``), so
that the demo's own history generator makes the batches: every step, value, material, QC result,
device reading, alarm, custody hand-off and deviation as the demo has them, completed and aborted
across the six active sites; the live batches (in progress, awaiting release, certified) on top.
Then bulk events: written by COPY into lanes of their own (``MAD/24`` …, each a hash chain from its
genesis, with its ``ChainHead``), events of realistic types about the batches and their orders
(steps recorded and verified, device pushes, hand-offs and labels stating the COI and DIN, so that
``EventSubject`` has their keys), ``--events`` in all, the busiest batches getting thousands so that
object pages have hundreds of events to show. The chains verify (``pocare audit verify``): the
hashes are computed with ``pocare.ledger.canonical.event_hash`` as the ledger does.

**Reuse.** The database's comment holds a fingerprint of the sizes and of this build's version; a
second run with the same sizes skips the build (and only migrates, so new indexes are applied to
the data as production would apply them). ``--rebuild`` forces a new build.

**What is timed.** The route list is the URL resolver's, walked as ``tests/test_permission_matrix.py``
walks it, so a new page is timed the moment it exists. A URL that names an object gets the busiest
one of its kind (the batch with the most events, its order, its steps; the site with the most
batches …); a route this script does not know yet falls back to the permission matrix's way of
naming an object. The home page is timed for every role; every other page for the first role (the
Control Site's first) allowed to read it. Everything runs inside one transaction that is rolled
back, so the logins and anything a fallback makes leave the database as built.

Usage::

    .venv/bin/python benchmarks/pages_at_scale.py                      # 10,000 batches, 2 M events
    .venv/bin/python benchmarks/pages_at_scale.py --only release --repeat 50
    .venv/bin/python benchmarks/pages_at_scale.py --batches 500 --events 100000 --db bench_pages_small

Nothing asserts on timing: pages that miss the target are listed as MISS.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import math
import os
import random
import re
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the permission matrix's route walk and object namers (tests/)
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ledger import PG_SERVER, django_setup, machine_info, migrate, pg_recreate  # noqa: E402

DB = "bench_pages"
TARGET_MS = 200.0
#: Changes when the build makes different data: a database built by another version is rebuilt.
BUILD_VERSION = "1"
#: History batches per unit and month of the history's starting window, rounded down (423 batches on
#: 12 units in 18 months; the youngest starts 35 days before now, ``LAST_START_BEFORE_NOW``).
BATCHES_PER_UNIT_MONTH = 1.9
DEMO_SITES = 6
HISTORY_MONTHS = 18
#: Lanes of each site's chain that the bulk events open, after the lanes the site has (verify
#: requires a site's lanes to be numbered without gaps; later appends may continue them, as the
#: ledger's own lanes are continued).
BULK_LANES = 4


# --- the data ------------------------------------------------------------------------------------


def fingerprint(batches: int, events: int) -> str:
    return f"pocare-bench-pages v{BUILD_VERSION} batches={batches} events={events}"


def existing_fingerprint(db: str) -> str | None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        row = conn.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                           [db]).fetchone()
    return row[0] if row else None


def mark(db: str, text: str) -> None:
    """Write what the database holds into its comment (read back by :func:`existing_fingerprint`)."""
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"COMMENT ON DATABASE \"{db}\" IS '{text}'")


def units_for(batches: int) -> tuple[int, int]:
    """(history months, extra units per site) for at least ``batches`` history batches."""
    from pocare.demo.history.plan import LAST_START_BEFORE_NOW

    months = min(HISTORY_MONTHS, max(2, math.ceil(batches / (2 * DEMO_SITES * BATCHES_PER_UNIT_MONTH))))
    starting = months - LAST_START_BEFORE_NOW.days / 30.4  # the months in which batches start
    units = math.ceil(batches * 1.05 / (DEMO_SITES * BATCHES_PER_UNIT_MONTH * starting))
    return months, max(0, units - 2)


def build(batches: int, events: int, *, password: str | None = None, say: Callable[[str], None] = print) -> None:
    """The demo network grown to ``batches`` history batches, then bulk events up to ``events``, on
    the database Django is connected to (the tests' database too: ``password`` is then theirs)."""
    build_demo(batches, password=password, say=say)
    bulk_events(events, say=say)


def build_demo(batches: int, *, password: str | None = None, say: Callable[[str], None] = print) -> None:
    """``pocare demo`` with as many units per site as ``batches`` history batches need."""
    from django.core import mail
    from django.test.utils import override_settings

    from pocare.demo.loader import load
    from pocare.demo.people import DEMO_PASSWORD
    from pocare.ledger.context import new_request_id, request_id_scope
    from pocare.manufacturing.models import Batch

    months, extra = units_for(batches)
    started = time.perf_counter()
    with request_id_scope(new_request_id("bench")), override_settings(
            EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
        load(password=password or DEMO_PASSWORD, history_months=months, extra_units_per_site=extra)
        mail.outbox = []
    say(f"  demo network: {Batch.objects.count():,} batches ({months} months of history, {extra + 2} units "
        f"per site) in {time.perf_counter() - started:.0f} s")


EVENT_KINDS: tuple[tuple[str, str, float], ...] = (
    # (event type, what it is about, share of the events)
    ("manufacturing.step_started", "step", 0.18),
    ("manufacturing.step_recorded", "step", 0.22),
    ("manufacturing.step_verified", "step", 0.12),
    ("manufacturing.device_data_pushed", "batch", 0.20),
    ("manufacturing.qc_result_recorded", "qc", 0.10),
    ("custody.handoff_completed", "order", 0.10),
    ("custody.temperatures_uploaded", "order", 0.05),
    ("custody.label_printed", "order", 0.03),
)
INSERT_COLUMNS = (
    "chain", "seq", "prev_hash", "hash", "event_type", "occurred_at", "actor_id", "actor_username",
    "actor_printed_name", "object_type", "object_id", "object_repr", "reason", "request_id", "old_values",
    "new_values",
)


@dataclass
class BatchRow:
    pk: int
    reference: str
    site: str
    started_at: dt.datetime
    order_pk: int
    coi: str
    din: str
    people: list[tuple[int, str, str]]


def _batches() -> list[BatchRow]:
    from pocare.accounts.models import Membership
    from pocare.custody.models import Collection
    from pocare.manufacturing.models import Batch

    people: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for m in Membership.objects.filter(revoked_at=None, site__isnull=False).select_related("user", "site"):
        people[m.site.code].append((m.user_id, m.user.username, m.user.printed_name))
    dins = dict(Collection.objects.values_list("order_id", "din"))
    return [BatchRow(b.pk, b.reference, b.site.code, b.started_at, b.order_id, b.order.coi or "",
                     dins.get(b.order_id, ""), people[b.site.code])
            for b in Batch.objects.select_related("site", "order").order_by("started_at", "pk")]


def _bulk_lanes(sites: set[str]) -> dict[str, list[str]]:
    """The next :data:`BULK_LANES` lanes of each site's chain, after those it has opened."""
    from pocare.ledger.models import ChainHead, lane_chain, lane_number, site_chain

    last: dict[str, int] = defaultdict(int)
    for chain in ChainHead.objects.values_list("chain", flat=True):
        last[site_chain(chain)] = max(last[site_chain(chain)], lane_number(chain))
    return {s: [lane_chain(s, last[s] + k) for k in range(1, BULK_LANES + 1)] for s in sites}


def _event_rows(n: int, rows: list[BatchRow], lanes: dict[str, list[str]]) -> Iterator[tuple[Any, ...]]:
    """``n`` events about the batches, as COPY rows, chained per lane; the heads are left in
    ``_event_rows.heads``. A tenth of the batches (the "busy" ones) draw ten times the events."""
    from pocare.ledger.canonical import GENESIS_HASH, canonical_json, event_hash

    rng = random.Random(15)
    weights = [10.0 if i % 10 == 0 else 1.0 for i in range(len(rows))]
    picks = sorted(rng.choices(range(len(rows)), weights=weights, k=n))  # batch order ≈ time order
    kinds = [k for k, _, _ in EVENT_KINDS]
    about = {k: a for k, a, _ in EVENT_KINDS}
    kind_picks = rng.choices(kinds, weights=[w for _, _, w in EVENT_KINDS], k=n)
    heads: dict[str, tuple[int, str]] = {}
    for i, (b_index, kind) in enumerate(zip(picks, kind_picks, strict=True)):
        b = rows[b_index]
        chain = lanes[b.site][i % BULK_LANES]
        seq, prev = heads.get(chain, (0, GENESIS_HASH))
        seq += 1
        at = b.started_at + dt.timedelta(seconds=rng.uniform(0, 12 * 86400))
        actor_id, username, printed = b.people[i % len(b.people)] if b.people else (None, "system", "System")
        what = about[kind]
        if what == "order":
            otype, oid, orepr = "custody.TherapyOrder", str(b.order_pk), f"Order {b.coi}"
            old, new = {}, {"coi": b.coi, "din": b.din, "kind": kind.rsplit("_", 1)[0], "location": "Cell therapy unit"}
        elif what == "step":
            otype, oid, orepr = "manufacturing.StepExecution", f"{b.pk}:{i % 17}", f"{b.reference} step {i % 17}"
            old, new = {"status": "pending"}, {"status": "done", "value": round(rng.gauss(37, 0.3), 2)}
        elif what == "qc":
            otype, oid, orepr = "manufacturing.QcResult", f"{b.pk}:{i % 12}", f"{b.reference} QC {i % 12}"
            old, new = {}, {"result": round(rng.uniform(20, 60), 1), "conforms": True}
        else:
            otype, oid, orepr = "manufacturing.Batch", str(b.pk), b.reference
            old, new = {}, {"readings": rng.randint(20, 120), "sha256": f"{rng.getrandbits(128):032x}"}
        fields = (chain, seq, prev, kind, at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), actor_id, username, printed,
                  otype, oid, orepr, "" if i % 7 else "Recorded after the run: device clock offset",
                  f"bench-{i:012x}", canonical_json(old), canonical_json(new))
        h = event_hash(fields)
        heads[chain] = (seq, h)
        yield (chain, seq, prev, h, kind, at, *fields[5:])
    _event_rows.heads = heads  # type: ignore[attr-defined]


def bulk_events(target: int, *, say: Callable[[str], None] = print) -> int:
    """Events up to ``target`` in all, written by COPY (PostgreSQL) or executemany (SQLite), with
    their ``EventSubject`` keys and chain heads; secondary indexes of the event table are dropped
    during the load and made again after it on PostgreSQL (faster than updating them row by row)."""
    from django.db import connection, transaction

    from pocare.ledger.models import Event

    started = time.perf_counter()
    n = target - Event.objects.count()
    rows = _batches()
    if n <= 0 or not rows:
        return 0
    cols = ", ".join(INSERT_COLUMNS)
    pg = connection.vendor == "postgresql"
    lanes_of = _bulk_lanes({r.site for r in rows})
    with transaction.atomic(), connection.cursor() as cur:
        indexes: list[tuple[str, str]] = []
        if pg:
            cur.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'ledger_event' "
                        "AND indexdef NOT LIKE 'CREATE UNIQUE%%'")
            indexes = list(cur.fetchall())
            for name, _ in indexes:
                cur.execute(f'DROP INDEX "{name}"')
            with cur.cursor.copy(f"COPY ledger_event ({cols}) FROM STDIN") as copy:
                for row in _event_rows(n, rows, lanes_of):
                    copy.write_row(row)
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the actor keys' deferred checks, before indexing
            for _, definition in indexes:
                cur.execute(definition)
        else:
            connection.connection.cursor().executemany(
                f"INSERT INTO ledger_event ({cols}) VALUES ({', '.join('?' * len(INSERT_COLUMNS))})",
                ((*r[:5], r[5].strftime("%Y-%m-%d %H:%M:%S.%f"), *r[6:]) for r in _event_rows(n, rows, lanes_of)))
        lanes = [lane for site_lanes in lanes_of.values() for lane in site_lanes]
        marks = ", ".join(["%s"] * len(lanes))
        for key in ("coi", "din"):
            # The ledger writes these rows with each event (EventSubject); here, from the events, as
            # migration 0005 built them.
            pattern = '%%"' + key + '":"%%'
            extract = (f"new_values::json ->> '{key}'" if pg else f"json_extract(new_values, '$.{key}')")
            cur.execute(f"INSERT INTO ledger_eventsubject (event_id, key) SELECT id, {extract} FROM ledger_event "
                        f"WHERE chain IN ({marks}) AND new_values LIKE %s", [*lanes, pattern])
        heads = _event_rows.heads  # type: ignore[attr-defined]
        cur.executemany("INSERT INTO ledger_chainhead (chain, seq, hash) VALUES (%s, %s, %s)",
                        [(c, s, h) for c, (s, h) in heads.items()])
    with connection.cursor() as cur:  # VACUUM cannot run in a transaction (a test's)
        cur.execute("VACUUM ANALYZE" if pg and not connection.in_atomic_block else "ANALYZE")
    say(f"  bulk events: {n:,} in {time.perf_counter() - started:.0f} s")
    return n


# --- the pages -----------------------------------------------------------------------------------


@dataclass
class Busiest:
    """The objects the object pages are timed on: the busiest of each kind in the big data."""

    batch: Any
    completed: Any
    certified: Any
    order: Any
    site: str
    unit: int
    person: Any


def busiest() -> Busiest:
    from django.db.models import Count

    from pocare.accounts.models import User
    from pocare.manufacturing.models import Batch, BatchStatus
    from pocare.network.models import ManufacturingUnit
    from pocare.release.models import Certification

    def most_events(batches: Any) -> Any:
        from pocare.ledger.models import Event

        ids = [str(pk) for pk in batches.values_list("pk", flat=True)[:5000]]
        top = (Event.objects.filter(object_type="manufacturing.Batch", object_id__in=ids)
               .values("object_id").annotate(n=Count("id")).order_by("-n").first())
        return batches.filter(pk=int(top["object_id"])).first() if top else batches.first()

    completed = Batch.objects.filter(status=BatchStatus.COMPLETED).order_by("-started_at")
    batch = most_events(Batch.objects.order_by("-started_at"))
    certified = Certification.objects.select_related("batch").order_by("-pk").first()
    site = (Batch.objects.values("site__code").annotate(n=Count("id")).order_by("-n").first() or {}).get(
        "site__code", "MAD")
    unit = (ManufacturingUnit.objects.annotate(n=Count("batches")).order_by("-n").first())
    return Busiest(batch=batch, completed=most_events(completed), certified=certified.batch if certified else None,
                   order=batch.order, site=site, unit=unit.pk if unit else 0,
                   person=User.objects.get(username=f"operator.{site.lower()}"))


def object_kwargs(b: Busiest) -> dict[str, Callable[[], dict[str, Any]]]:
    """URL kwargs per route name, naming the busiest object of its kind."""
    from pocare.costs.models import CostReport
    from pocare.custody.models import Shipment, TemperatureReading
    from pocare.ledger.models import AuditReview, Event, Signature
    from pocare.manufacturing.models import Alarm, DeviceReading, QcResult, StepValue
    from pocare.masterfile.models import ChangeRequest
    from pocare.network.models import SiteAuthorization
    from pocare.planning.models import PlanningRun
    from pocare.quality.models import Deviation, QualitySignal
    from pocare.training.models import TrainingRecord

    batch, ref = b.batch, b.batch.reference
    step = batch.steps.order_by("-position").first()
    qc = QcResult.objects.filter(batch=batch).first() or QcResult.objects.first()
    version = batch.masterfile_version
    shipment = Shipment.objects.order_by("-pk").first()
    reading = TemperatureReading.objects.order_by("-pk").first()
    collection = b.order.collections.first()
    deviation = Deviation.objects.filter(site__code=b.site).order_by("-pk").first()

    def first(model: Any, **where: Any) -> dict[str, Any]:
        row = model.objects.filter(**where).order_by("-pk").first()
        return {"pk": row.pk} if row else {}

    from pocare.patients.models import AdverseEvent, Patient, Referral, Visit

    def patient(**where: Any) -> dict[str, Any]:
        """A demo patient treated at the busiest site having ``where`` (a consent signed, a booking …)."""
        row = Patient.objects.filter(treating_site__code=b.site, **where).order_by("-pk").first()
        return {"pseudonym": row.pseudonym} if row else {}

    def followed_visit() -> dict[str, Any]:
        visit = Visit.objects.filter(referral__patient__treating_site__code=b.site).order_by("-pk").first()
        return {"pseudonym": visit.referral.patient.pseudonym, "pk": visit.pk} if visit else {}

    def infused_referral() -> dict[str, Any]:
        row = Referral.objects.filter(patient__treating_site__code=b.site, infused_at__isnull=False).first()
        return {"pseudonym": row.patient.pseudonym, "referral": row.pk} if row else {}

    def adverse_event() -> dict[str, Any]:
        row = AdverseEvent.objects.filter(referral__patient__treating_site__code=b.site).select_related(
            "referral__patient").order_by("-pk").first()
        return {"pseudonym": row.referral.patient.pseudonym, "pk": row.pk} if row else {}

    batch_ref = {"reference": ref}

    def transfer_ref() -> dict[str, Any]:
        from pocare.supply.models import Transfer

        row = Transfer.objects.order_by("-pk").values_list("reference", flat=True).first()
        return {"reference": row} if row else {}

    completed_ref = {"reference": (b.completed or batch).reference}
    certified_ref = {"reference": (b.certified or b.completed or batch).reference}
    return {
        "trail:event": lambda: {"pk": Event.objects.order_by("-pk").values_list("pk", flat=True).first()},
        "api-event": lambda: {"pk": Event.objects.order_by("-pk").values_list("pk", flat=True).first()},
        "trail:review": lambda: first(AuditReview),
        "api-signature": lambda: first(Signature),
        "network:site": lambda: {"code": b.site},
        "api-site": lambda: {"code": b.site},
        "api-site-units": lambda: {"code": b.site},
        "api-site-transitions": lambda: {"code": b.site},
        "analytics:site": lambda: {"code": b.site},
        "api-analytics-site": lambda: {"code": b.site},
        "network:unit": lambda: {"pk": b.unit},
        "accounts:person": lambda: {"pk": b.person.pk},
        "training:person": lambda: {"pk": b.person.pk},
        "api-user": lambda: {"pk": b.person.pk},
        "training:record": lambda: first(TrainingRecord),
        "api-training-record": lambda: first(TrainingRecord),
        "masterfile:version": lambda: {"pk": version.pk},
        "masterfile:version_document": lambda: {"pk": version.pk},
        "api-masterfile-version": lambda: {"pk": version.pk},
        "masterfile:change": lambda: first(ChangeRequest),
        "api-masterfile-change": lambda: first(ChangeRequest),
        "masterfile:dossier": lambda: {"code": version.product.code},
        "masterfile:dossier_pdf": lambda: {"code": version.product.code},
        "quality:deviation": lambda: {"reference": deviation.reference} if deviation else {},
        "api-deviation": lambda: {"reference": deviation.reference} if deviation else {},
        "planning:run": lambda: first(PlanningRun),
        "planning:run_report": lambda: first(PlanningRun),
        "custody:order": lambda: {"pk": b.order.pk},
        "api-custody-order": lambda: {"pk": b.order.pk},
        "api-custody-handoffs": lambda: {"pk": b.order.pk},
        "custody:labels_pdf": lambda: {"pk": b.order.pk},
        "custody:label_svg": lambda: {"pk": b.order.pk, "container": f"bag-{collection.pk}"} if collection else {},
        "custody:shipment_readings": lambda: {"pk": shipment.pk} if shipment else {},
        "api-custody-temperatures": lambda: {"pk": shipment.pk} if shipment else {},
        "custody:temperature_correct": lambda: {"pk": reading.pk} if reading else {},
        "manufacturing:batch": lambda: batch_ref,
        "manufacturing:batch_review": lambda: completed_ref,
        "manufacturing:batch_device": lambda: batch_ref,
        "manufacturing:batch_readings": lambda: batch_ref,
        "manufacturing:step": lambda: {"reference": ref, "step_id": step.step_id} if step else {},
        "manufacturing:qc_result": lambda: {"reference": qc.batch.reference, "attribute_id": qc.attribute_id}
        if qc else {},
        "manufacturing:value_correct": lambda: first(StepValue, step__batch=batch),
        "manufacturing:reading_correct": lambda: first(DeviceReading, batch=batch),
        "manufacturing:alarm_acknowledge": lambda: first(Alarm),
        "api-batch": lambda: batch_ref,
        "api-batch-device-data": lambda: batch_ref,
        "api-batch-alarms": lambda: batch_ref,
        "api-release-checklist": lambda: completed_ref,
        "api-batch-bundle": lambda: completed_ref,
        "release:batch": lambda: completed_ref,
        "release:certificate": lambda: certified_ref,
        "release:bundle": lambda: completed_ref,
        "network:authorization_revoke": lambda: first(SiteAuthorization),
        "api-signal-resolve": lambda: first(QualitySignal),
        "patients:patient": lambda: patient(referrals__visits__isnull=False),
        "patients:support": lambda: patient(),
        "patients:followup": lambda: patient(referrals__visits__isnull=False),
        "patients:followup_visit": followed_visit,
        "patients:adverse_event_new": infused_referral,
        "patients:adverse_event_correct": adverse_event,
        "patients:identity": lambda: patient(erased_at__isnull=True),
        "patients:identity_erase": lambda: patient(erased_at__isnull=True),
        "patients:consent_document": lambda: patient(referrals__consents__isnull=False),
        "patients:leaflet": lambda: patient(),
        "patients:appointment_letter": lambda: patient(referrals__bookings__status="active"),
        "patients:questionnaire_document": lambda: patient(referrals__visits__isnull=False),
        "patients:questionnaire": lambda: patient(referrals__visits__isnull=False),
        "patients:booking": lambda: patient(referrals__bookings__status="active"),
        "patients:slots": lambda: {"code": b.site},
        "costs:report": lambda: first(CostReport),  # the demo's signed network report
        "costs:batch": lambda: batch_ref,
        "supply:transfer": transfer_ref,
        "supply:transfer_disposition": transfer_ref,  # the demo's newest transfer from the Iberian depot
    }


@dataclass
class Target:
    name: str
    url: str
    username: str
    note: str = ""


def targets(only: str | None, password: str | None = None) -> list[Target]:
    """Every GET route × the role it is timed as, with its URL on the big data. ``password`` is the people's:
    the permission matrix's object makers sign with the tests' password, which the demo's people do not have."""
    import tests.manufacturing.helpers as matrix_helpers
    from django.urls import NoReverseMatch, reverse
    from tests.test_permission_matrix import ROUTES

    from pocare.accounts.roles import NETWORK_ROLES, ROLE_PERMS, Role
    from pocare.demo.people import demo_username

    b = busiest()
    mine = object_kwargs(b)
    order = sorted(Role, key=lambda r: (r not in NETWORK_ROLES, list(Role).index(r)))
    skip = {"accounts:logout"}  # a GET would end the session being measured
    found = []
    for route in ROUTES:
        if "GET" not in route.allowed_methods() or route.name in skip:
            continue
        perm = route.read_perm
        roles = [r for r in order if perm in (None, "public", "signed_in") or perm in ROLE_PERMS[r]]
        chosen = roles if route.name == "web:home" else roles[:1]
        note, kwargs = "", None
        if route.kwargs_for is not None:
            try:
                kwargs = mine[route.name]() if route.name in mine else {}
                if not kwargs:  # a kind this script does not know, or none in the data: the matrix's
                    with mock.patch.object(matrix_helpers, "PASSWORD", password or matrix_helpers.PASSWORD):
                        kwargs, note = route.kwargs_for(b.site), "matrix's object"
            except Exception as exc:  # a fallback that cannot name an object is reported, not fatal
                kwargs, note = {}, f"no object: {type(exc).__name__}"
        for role in chosen:
            username = demo_username(role, "CTRL" if role in NETWORK_ROLES else b.site)
            try:
                url = reverse(route.name, kwargs=kwargs) if route.kwargs_for is not None else reverse(route.name)
            except NoReverseMatch:
                url, note = "", note or "no object"
            t = Target(route.name if route.name != "web:home" else f"web:home ({role.label})", url, username, note)
            if not only or re.search(only, t.name) or re.search(only, t.url):
                found.append(t)
    return found


def _body(response: Any) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return bytes(response.content)


def measure(targets_: list[Target], repeat: int, warmup: int, password: str) -> list[dict[str, Any]]:
    """GET each target ``warmup`` + ``repeat`` times as its persona; p50/p95 of the timed GETs, the
    queries and bytes of one more."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from pocare.core.runtime import tune_for_serving

    tune_for_serving()  # as wsgi.py and `pocare serve` run the application (the collector's thresholds)
    clients: dict[str, Client] = {}
    results = []
    for t in targets_:
        if not t.url or repeat == 0:  # no object to show; or only the list of URLs was asked for
            results.append({"target": t, "status": "-", "p50": None, "p95": None, "queries": None, "bytes": None})
            continue
        client = clients.get(t.username)
        if client is None:
            client = clients[t.username] = Client(HTTP_HOST="127.0.0.1")
            response = client.post("/login/", {"username": t.username, "password": password})
            if response.status_code != 302:
                client.force_login(_user(t.username))
        for _ in range(warmup):
            _body(client.get(t.url))
        times, cpu = [], []
        for _ in range(repeat):
            start, start_cpu = time.perf_counter(), time.process_time()
            response = client.get(t.url)
            body = _body(response)
            times.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(t.url)
            body = _body(response)
        times.sort()
        slowest = sorted(queries.captured_queries, key=lambda q: -float(q["time"]))[:3]
        results.append({"target": t, "status": response.status_code, "p50": statistics.median(times),
                        "cpu": statistics.median(cpu),
                        "p95": times[max(0, math.ceil(0.95 * len(times)) - 1)], "queries": len(queries),
                        "bytes": len(body), "sql_ms": sum(float(q["time"]) for q in queries.captured_queries) * 1000,
                        "slowest": [(float(q["time"]) * 1000, q["sql"]) for q in slowest]})
    return results


def _user(username: str) -> Any:
    from pocare.accounts.models import User

    return User.objects.get(username=username)


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| page | as | URL | status | p50 ms | p95 ms | Django CPU ms | queries | KiB | 200 ms |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        t = r["target"]
        if r["p95"] is None:
            lines.append(f"| {t.name} | {t.username} | {t.url or '-'} | - | | | | | | {t.note or 'not timed'} |")
            continue
        verdict = "PASS" if r["p95"] <= TARGET_MS and r["status"] < 400 else "MISS"
        if r["status"] >= 400:
            verdict = f"MISS ({r['status']})"
        note = f" ({t.note})" if t.note else ""
        lines.append(f"| {t.name}{note} | {t.username} | `{t.url}` | {r['status']} | {r['p50']:.1f} | "
                     f"{r['p95']:.1f} | {r['cpu']:.0f} | {r['queries']} | {r['bytes'] / 1024:.1f} | {verdict} |")
    timed = [r for r in results if r["p95"] is not None]
    missed = [r for r in timed if r["p95"] > TARGET_MS or r["status"] >= 400]
    lines.append("")
    lines.append(f"{len(timed)} URLs timed, {len(timed) - len(missed)} PASS, {len(missed)} MISS "
                 f"(target p95 ≤ {TARGET_MS:.0f} ms).")
    if missed:
        lines += ["", "Where the missed pages spend their time (one GET; SQL as the driver timed it):", ""]
        for r in missed:
            lines.append(f"- {r['target'].name}: {r['queries']} queries, {r['sql_ms']:.0f} ms of SQL; slowest: "
                         + "; ".join(f"{ms:.0f} ms `{sql[:160]}`" for ms, sql in r["slowest"]))
    return "\n".join(lines)


def run_pages(*, repeat: int, warmup: int, only: str | None, password: str,
              say: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Time every page inside one transaction that is rolled back (logins leave no trace)."""
    from django.db import transaction

    with transaction.atomic():
        found = targets(only, password)
        say(f"  {len(found)} URLs, {repeat} timed GETs each after {warmup} warm-up")
        results = measure(found, repeat, warmup, password)
        transaction.set_rollback(True)
    return results


def sizes() -> dict[str, int]:
    from pocare.ledger.models import ChainHead, EventSubject
    from pocare.manufacturing.models import Batch, DeviceReading

    with contextlib.suppress(Exception):
        from django.db.models import Sum

        return {"batches": Batch.objects.count(),
                "events": int(ChainHead.objects.aggregate(n=Sum("seq"))["n"] or 0),
                "event subjects": EventSubject.objects.count(),
                "device readings": DeviceReading.objects.count()}
    return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=20, help="timed GETs per URL (after the warm-up)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--only", help="a regular expression on the route name or URL")
    parser.add_argument("--db", default=DB, help="the PostgreSQL database to build or reuse")
    parser.add_argument("--rebuild", action="store_true", help="build even when the fingerprint matches")
    parser.add_argument("--build-only", action="store_true")
    args = parser.parse_args(argv)
    if not 10 <= args.batches <= 100_000:
        parser.error("--batches: between 10 and 100,000")
    if not 1_000 <= args.events <= 20_000_000:
        parser.error("--events: between 1,000 and 20,000,000")
    if not 1 <= args.repeat <= 1_000:
        parser.error("--repeat: between 1 and 1,000")
    if args.only:
        try:
            re.compile(args.only)
        except re.error as exc:
            parser.error(f"--only: not a regular expression ({exc})")
    url = f"{PG_SERVER}/{args.db}"
    # ``pocare migrate`` runs in a subprocess: it must migrate with this checkout's code (a worktree's
    # new migrations), not with whatever checkout the virtualenv's editable install points at.
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    wanted = fingerprint(args.batches, args.events)
    found = existing_fingerprint(args.db)
    if args.rebuild or found != wanted:
        print(f"Building {url} ({args.batches:,} batches, {args.events:,} events) …", flush=True)
        started = time.perf_counter()
        demo_only = f"{wanted} (demo loaded, events not yet)"
        if found != demo_only or args.rebuild:  # a build that stopped after the demo goes on from there
            pg_recreate(args.db)
            migrate(url)
            django_setup(url)
            build_demo(args.batches)
            mark(args.db, demo_only)
        else:
            migrate(url)
            django_setup(url)
        bulk_events(args.events)
        mark(args.db, wanted)
        print(f"Built in {time.perf_counter() - started:.0f} s.", flush=True)
    else:
        print(f"Reusing {url} ({wanted}); migrating it.", flush=True)
        migrate(url)
        django_setup(url)
    print("  " + ", ".join(f"{k} {v:,}" for k, v in sizes().items()), flush=True)
    if args.build_only:
        return 0
    from pocare.demo.people import DEMO_PASSWORD

    results = run_pages(repeat=args.repeat, warmup=args.warmup, only=args.only, password=DEMO_PASSWORD)
    print(table(results))
    print("Machine:", ", ".join(f"{k} {v}" for k, v in machine_info().items()))
    print(f"Load average (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
