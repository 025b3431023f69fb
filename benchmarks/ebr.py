"""Benchmark of the electronic batch record: signed step records per second through the API, and
the latency and query count of the batch page.

One command measures, on a scratch SQLite file and on a scratch PostgreSQL database:

1. **Step records per second** through ``POST /api/batches/<ref>/steps/<step_id>/record/`` with
   Bearer-token auth, driven by Django's test ``Client`` (the full WSGI stack: middleware, DRF,
   serializers, the service, the ledger, the signature). Every record is signed, so the signer's
   password is checked on every request: measured with the production hasher (Argon2id, as
   ``settings.py`` configures it) and with a fast hasher (MD5, as the test suite uses), so that
   the reader sees what the signature's password check costs. The baseline in the same run is
   the same writes without the API layer: ``services.step_record`` called directly. One client,
   one request at a time; each record request is timed on its own (the second-person
   verifications that 4-eyes steps need between records are done the same way but not timed).
2. **The batch page** ``/manufacturing/batches/<ref>/`` for a batch whose master-file version has
   40 steps (39 recorded with their values, lots and signatures, the 40th next), 2,000 device
   points and 20 QC results: GET N times logged in, p50 / p95 / max, and the number of queries
   for the same batch shape with 10, 20 and 40 steps (``CaptureQueriesContext``). The device
   charts are a separate HTMX fragment (``/device/``), timed too.

The master file is synthetic: the demo v1 document (``cd19-cart-v1.yaml``) as a new product with
its process extended to N steps (in-process expansion checks on the device, three parameters
each) and its specification to 20 attributes, loaded, reviewed, approved and made effective
through the master-file services, with MAD authorized and its people trained through the
network and training services. Batches are started through ``services.batch_start`` on an
accepted, received therapy order, exactly as the tests do.

Usage::

    .venv/bin/python benchmarks/ebr.py                       # both backends, about 4 minutes
    .venv/bin/python benchmarks/ebr.py --backend postgresql
    .venv/bin/python benchmarks/ebr.py --quick               # smoke run

Environment: ``BENCH_PG_URL`` (default ``postgres://postgres@127.0.0.1:5432``); the script
(re)creates and drops the database ``pocare_bench_ebr`` there and the SQLite file
``var/bench/ebr.sqlite3``. Nothing asserts on timing; the target (p95 under 150 ms on
PostgreSQL, queries not growing with the number of steps) is reported as met or missed.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import itertools
import json
import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scratch
from ledger import BENCH_DIR, CTX, ROOT, _machine_busy, machine_info

sys.path.insert(0, str(ROOT))  # tests.manufacturing.helpers builds the world as the tests do

DB_NAMES = {"sqlite": "ebr", "postgresql": "pocare_bench_ebr"}  # var/bench/ebr.sqlite3, or a database of its own
PASSWORD = "correct horse battery staple 42"  # noqa: S105 - the demo personas' password, as in the tests
SITE = "MAD"
PAGE_STEPS = (10, 20, 40)
QC_RESULTS = 20
DEVICE_POINTS = 2_000
TARGET_P95_MS = 150.0
ARGON2 = ["django.contrib.auth.hashers.Argon2PasswordHasher", "django.contrib.auth.hashers.PBKDF2PasswordHasher"]
FAST = ["django.contrib.auth.hashers.MD5PasswordHasher"]
_numbers = itertools.count(1)


# --- the synthetic master file -----------------------------------------------------------------


def document(n_steps: int) -> str:
    """The demo v1 document as product BENCH<n>, its process cut or extended to ``n_steps`` steps
    and its specification extended to 20 attributes."""
    import yaml

    from pocare.demo.masterfile import DOCUMENTS

    doc = yaml.safe_load((DOCUMENTS / "cd19-cart-v1.yaml").read_text(encoding="utf-8"))
    doc["product"]["code"] = f"BENCH{n_steps}"
    doc["product"]["name"] = f"POC-CAR19 benchmark ({n_steps} steps)"
    ops = doc["process"]["unit_operations"]
    total = sum(len(op["steps"]) for op in ops)
    if n_steps < total:  # keep the first n_steps steps
        left, kept = n_steps, []
        for op in ops:
            if left <= 0:
                break
            op["steps"] = op["steps"][:left]
            left -= len(op["steps"])
            kept.append(op)
        doc["process"]["unit_operations"] = kept
    else:  # daily in-process checks on the device during expansion
        expansion = next(op for op in ops if op["id"] == "expansion")
        extra = [{
            "id": f"expansion-check-{i:02d}", "name": f"Expansion check {i}",
            "instructions": "Read the culture chamber and record viable cells, viability and temperature.",
            "equipment_class": "clinimacs_prodigy", "qualification": "prodigy-operation",
            "expected_duration_min": 15,
            "parameters": [
                {"id": "viable-cells", "name": "Viable cells", "type": "number", "unit": "10^6 cells", "min": 50},
                {"id": "viability", "name": "Viability", "type": "number", "unit": "%", "min": 70, "max": 100,
                 "critical": True},
                {"id": "culture-temperature", "name": "Culture temperature", "type": "number", "unit": "°C",
                 "min": 36.5, "max": 37.5, "target": 37, "critical": True},
            ],
            **({"materials": [{"code": "TEXMACS", "name": "TexMACS GMP medium", "quantity": 0.5, "unit": "L"}]}
               if i % 4 == 0 else {}),
        } for i in range(1, n_steps - total + 1)]
        expansion["steps"] = expansion["steps"][:2] + extra + expansion["steps"][2:]
    attrs = doc["specification"]["attributes"]
    for a in attrs:  # the page's 20 results are entered before its last step: no sample waits on a step here
        a.pop("sample_step", None)
    for a in list(attrs)[: QC_RESULTS - len(attrs)]:
        b = copy.deepcopy(a)
        b["id"], b["name"], b["sample_point"] = f"{a['id']}-retain", f"{a['name']} (retained sample)", "Retain"
        b.pop("result_after_release", None)
        attrs.append(b)
    doc.pop("site_annexes", None)
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def load_product(n_steps: int) -> Any:
    """Product BENCH<n>, v1 effective, MAD authorized and its people trained (services only)."""
    from tests.manufacturing.helpers import creds, user

    from pocare.masterfile import services as mf
    from pocare.masterfile.selectors import required_training_steps
    from pocare.network.models import Site
    from pocare.network.services import site_authorize
    from pocare.training.models import TrainingKind
    from pocare.training.services import training_acknowledge, training_record

    product = mf.product_create(actor=user("qa2"), code=f"BENCH{n_steps}", name=f"Benchmark {n_steps}",
                                indication="benchmark", kind="autologous", reason="benchmark")
    v = mf.version_draft(actor=user("qa2"), product=product, document=document(n_steps), summary="benchmark",
                         reason="benchmark")
    v = mf.version_submit(actor=user("qa2"), version=v, credentials=creds("qa2"), reason="submit")
    v = mf.version_review(actor=user("qa"), version=v, credentials=creds("qa"), reason="reviewed")
    v = mf.version_approve(actor=user("qp"), version=v, credentials=creds("qp"), reason="approved")
    v = mf.version_make_effective(actor=user("qa"), version=v, credentials=creds("qa"), reason="effective")
    site = Site.objects.get(code=SITE)
    site_authorize(actor=user("qa"), site=site, product=product, from_version=1, valid_from=None, conditions="",
                   reason="benchmark", credentials=creds("qa"))
    s = SITE.lower()
    for trainee, trainer in ((f"operator.{s}", f"manager.{s}"), (f"manager.{s}", "qa2"), (f"qc.{s}", f"manager.{s}")):
        record = training_record(actor=user(trainer), trainee=user(trainee), site=site, kind=TrainingKind.VERSION,
                                 title=f"BENCH{n_steps} v1", trained_on=timezone_today(), masterfile_version=v,
                                 steps=required_training_steps(v), credentials=creds(trainer))
        training_acknowledge(actor=user(trainee), record=record, credentials=creds(trainee))
    return v


def timezone_today() -> dt.date:
    from django.utils import timezone

    return timezone.now().date() - dt.timedelta(days=1)


def start_batch(product: Any) -> Any:
    """A therapy order for ``product`` received at MAD, and its batch started on a free unit."""
    from tests.manufacturing.helpers import creds, unit_at, user

    from pocare.custody import services as custody
    from pocare.custody.models import HandoffKind
    from pocare.manufacturing import services
    from pocare.network.models import Site

    site = Site.objects.get(code=SITE)
    s = SITE.lower()
    physician, manager, operator = user(f"physician.{s}"), user(f"manager.{s}"), user(f"operator.{s}")
    from django.utils import timezone

    order = custody.therapy_order_create(
        actor=physician, site=site, treating_site=site, product=product, recipient_id=f"PT-B{next(_numbers):05d}",
        recipient_weight_kg=Decimal("72.5"), indication="LBCL", reason="benchmark order")
    order = custody.therapy_order_accept(actor=manager, order=order, reason="capacity available")
    now = timezone.now()
    collection = custody.collection_record(
        actor=physician, order=order, collection_started_at=now - dt.timedelta(hours=5),
        collection_ended_at=now - dt.timedelta(hours=1), volume_ml=Decimal("250"),
        donor_tests={"HIV": "negative", "HBV": "negative", "HCV": "negative"}, reason="apheresis done")
    for kind, who, where in ((HandoffKind.COLLECTION, physician, "Apheresis unit"),
                             (HandoffKind.DISPATCH_TO_SITE, physician, "Courier"),
                             (HandoffKind.RECEIPT_AT_SITE, operator, "Goods-in")):
        custody.handoff_record(actor=who, order=order, kind=kind, presented_identifier=collection.din, site=site,
                               location=where, collection=collection)
    return services.batch_start(actor=operator, order=order, unit=unit_at(SITE), presented_identifier=collection.din,
                                credentials=creds(operator))


def extra_units(n: int) -> None:
    from tests.manufacturing.helpers import user

    from pocare.network.models import DeviceType, Site
    from pocare.network.services import unit_register

    site = Site.objects.get(code=SITE)
    today = timezone_today()
    for i in range(n):
        unit_register(actor=user(f"manager.{SITE.lower()}"), site=site, device_type=DeviceType.PRODIGY,
                      model="CliniMACS Prodigy", serial=f"PRD-BENCH-{i:03d}",
                      calibration_due=today + dt.timedelta(days=200), maintenance_due=today + dt.timedelta(days=200),
                      reason="benchmark unit")


def set_hashers(hashers: list[str], usernames: list[str]) -> None:
    """Make ``hashers`` the ones in force and re-hash the people's passwords with the first."""
    from django.conf import settings
    from django.contrib.auth.hashers import get_hashers, get_hashers_by_algorithm

    from pocare.accounts.models import User

    settings.PASSWORD_HASHERS = hashers
    get_hashers.cache_clear()
    get_hashers_by_algorithm.cache_clear()
    for u in User.objects.filter(username__in=usernames):
        u.set_password(PASSWORD)
        u.save(update_fields=["password"])


def fill_batch(batch: Any, upto: int) -> None:
    """Record (and verify) the first ``upto`` steps with good values through the services."""
    from tests.manufacturing.helpers import do_step

    for _ in range(upto):
        do_step(batch)


def qc_results(batch: Any) -> None:
    from tests.manufacturing.helpers import creds, user

    from pocare.manufacturing import services

    qc = user(f"qc.{SITE.lower()}")
    for a in services.specification(batch):
        acc = a.get("acceptance", {})
        if acc.get("equals") is not None:
            value: Any = acc["equals"]
        elif acc.get("min") is not None and acc.get("max") is not None:
            value = (acc["min"] + acc["max"]) / 2
        elif acc.get("min") is not None:
            value = acc["min"] * 1.2 + 1
        else:
            value = acc["max"] / 2
        services.qc_result_record(actor=qc, batch=batch, attribute_id=a["id"], value=str(value), credentials=creds(qc))


def device_points(batch: Any, n: int) -> None:
    """``n`` readings over the 4 monitored parameters, one push, bulk-inserted (as a device feed would
    leave them; the feed's own cost is not what this measures)."""
    import hashlib

    from django.utils import timezone
    from tests.manufacturing.helpers import user

    from pocare.manufacturing.models import DevicePush, DeviceReading

    params = [(m["id"], (m["alarm_min"] + m["alarm_max"]) / 2)
              for m in batch.masterfile_version.content["process"]["monitoring"]]
    push = DevicePush.objects.create(idempotency_key=f"bench-{batch.reference}", pushed_by=user("operator.mad"),
                                     received_at=timezone.now(), rows=n, sha256=hashlib.sha256(b"bench").hexdigest())
    t0 = batch.started_at
    DeviceReading.objects.bulk_create([
        DeviceReading(push=push, batch=batch, parameter_id=params[i % len(params)][0],
                      at=t0 + dt.timedelta(minutes=i // len(params)), value=params[i % len(params)][1] + (i % 7) * 0.01)
        for i in range(n)])


# --- measurements ------------------------------------------------------------------------------


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


def measure_records(batches: list[Any], variant: str, tokens: dict[str, str]) -> list[float]:
    """Record every step of ``batches``; return the seconds each record took."""
    from django.test import Client
    from tests.manufacturing.helpers import good_values, into_window, material_lots, performer_for, user

    from pocare.ledger.signing import SigningCredentials
    from pocare.manufacturing import services

    client = Client(HTTP_HOST="127.0.0.1")
    manager = user(f"manager.{SITE.lower()}")
    times = []
    for batch in batches:
        steps = services.process_steps(batch)
        plan = [(s, good_values(s), material_lots(batch, s), performer_for(batch, s)) for s in steps]
        for step, values, materials, performer in plan:
            into_window(batch, step)  # the test clock waits for the step's process day (not timed)
            if variant == "api":
                body = json.dumps({"username": performer.username, "password": PASSWORD, "values": values,
                                   "materials": materials})
                t = time.perf_counter()
                r = client.post(f"/api/batches/{batch.reference}/steps/{step['id']}/record/", body,
                                content_type="application/json",
                                HTTP_AUTHORIZATION=f"Bearer {tokens[performer.username]}")
                times.append(time.perf_counter() - t)
                assert r.status_code == 201, (r.status_code, r.content[:500])
                if step.get("second_person_verification"):
                    r = client.post(f"/api/batches/{batch.reference}/steps/{step['id']}/verify/",
                                    json.dumps({"username": manager.username, "password": PASSWORD}),
                                    content_type="application/json",
                                    HTTP_AUTHORIZATION=f"Bearer {tokens[manager.username]}")
                    assert r.status_code == 200, (r.status_code, r.content[:500])
            else:
                t = time.perf_counter()
                services.step_record(actor=performer, batch=batch, step_id=step["id"], values=values,
                                     materials=materials,
                                     credentials=SigningCredentials(username=performer.username, password=PASSWORD))
                times.append(time.perf_counter() - t)
                if step.get("second_person_verification"):
                    services.step_verify(actor=manager, batch=batch, step_id=step["id"],
                                         credentials=SigningCredentials(username=manager.username, password=PASSWORD))
        batch.refresh_from_db()
        assert batch.status == "completed", batch.status
    return times


def measure_page(reference: str, gets: int) -> dict[str, Any]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    r = client.post("/login/", {"username": "operator.mad", "password": PASSWORD})
    assert r.status_code == 302, r.content[:300]
    url = f"/manufacturing/batches/{reference}/"
    for _ in range(5):  # warm-up (template loading, prepared statements)
        assert client.get(url).status_code == 200
    with CaptureQueriesContext(connection) as ctx:
        r = client.get(url)
    assert r.status_code == 200
    queries = [q["sql"] for q in ctx.captured_queries]
    page_bytes = len(r.content)
    times = []
    busy0, wall0, cpu0 = _machine_busy(), time.perf_counter(), time.process_time()
    for _ in range(gets):
        t = time.perf_counter()
        r = client.get(url)
        times.append(time.perf_counter() - t)
        assert r.status_code == 200
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    busy = _machine_busy() - busy0
    dev_times = []
    for _ in range(max(20, gets // 4)):
        t = time.perf_counter()
        r = client.get(url + "device/")
        dev_times.append(time.perf_counter() - t)
        assert r.status_code == 200
    per_param = DEVICE_POINTS // 4
    assert f"{per_param} readings".encode() in r.content, "the device fragment does not show the readings"
    with CaptureQueriesContext(connection) as dctx:
        client.get(url + "device/")
    ms = [1000 * x for x in times]
    dms = [1000 * x for x in dev_times]
    return {"queries": len(queries), "sql": queries, "bytes": page_bytes,
            "cpu_ms": 1000 * cpu / gets, "other_cores": max(0.0, (busy - cpu) / wall),
            "p50_ms": pct(ms, 50), "p95_ms": pct(ms, 95), "max_ms": max(ms), "mean_ms": statistics.mean(ms),
            "device_queries": len(dctx.captured_queries), "device_p50_ms": pct(dms, 50),
            "device_p95_ms": pct(dms, 95), "device_max_ms": max(dms)}


def profile_page(reference: str) -> dict[str, Any]:
    """Where the page's time goes: SQL time (from the driver) vs the rest, and a cProfile summary."""
    import cProfile
    import io
    import pstats

    from django.db import connection
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    client.post("/login/", {"username": "operator.mad", "password": PASSWORD})
    url = f"/manufacturing/batches/{reference}/"
    client.get(url)
    sql_s = [0.0]

    def timer(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        t = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            sql_s[0] += time.perf_counter() - t

    import gc

    gc_s, gc_start = [0.0, 0], [0.0]

    def gc_timer(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_start[0] = time.perf_counter()
        else:
            gc_s[0] += time.perf_counter() - gc_start[0]
            gc_s[1] += 1

    n = 20
    gc.callbacks.append(gc_timer)
    t = time.perf_counter()
    with connection.execute_wrapper(timer):
        for _ in range(n):
            client.get(url)
    total = (time.perf_counter() - t) / n
    gc.callbacks.remove(gc_timer)
    first_sql = sql_s[0]
    from pocare.manufacturing import selectors
    from pocare.manufacturing.models import Batch

    batch = Batch.objects.get(reference=reference)
    sel_sql = [0.0]
    t = time.perf_counter()
    with connection.execute_wrapper(timer):
        sql_before = sql_s[0]
        for _ in range(n):
            b = Batch.objects.select_related("site", "unit", "masterfile_version__product", "order",
                                             "collection").get(pk=batch.pk)
            page = selectors.batch_page(b)
        sel_sql[0] = sql_s[0] - sql_before
    select_ms = 1000 * (time.perf_counter() - t) / n
    t = time.perf_counter()
    with connection.execute_wrapper(timer):
        sql_before = sql_s[0]
        for _ in range(n):
            selectors.timeline(page)
        timeline_sql = sql_s[0] - sql_before
    timeline_ms = 1000 * (time.perf_counter() - t) / n
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(5):
        client.get(url)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(40)
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(25)
    return {"total_ms": 1000 * total, "sql_ms": 1000 * first_sql / n, "gc_ms": 1000 * gc_s[0] / n,
            "gc_runs": gc_s[1] / n, "cprofile": out.getvalue(),
            "select_ms": select_ms, "select_sql_ms": 1000 * sel_sql[0] / n, "timeline_ms": timeline_ms,
            "timeline_sql_ms": 1000 * timeline_sql / n}


def run_backend(backend: str, url: str, args: argparse.Namespace, out: Any) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["POCARE_VAR_DIR"] = str(BENCH_DIR)
    os.environ["POCARE_DEBUG"] = "0"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pocare.settings")
    import django

    django.setup()
    from django.db import connection
    from tests.manufacturing.helpers import lots, world

    from pocare.accounts.models import User
    from pocare.accounts.services import token_issue
    from pocare.demo.people import load_people

    t0 = time.perf_counter()
    people = ["operator.mad", "manager.mad", "qc.mad"]
    from django.conf import settings

    settings.PASSWORD_HASHERS = FAST  # the set-up signs hundreds of times; the measurement re-hashes
    from django.contrib.auth.hashers import get_hashers, get_hashers_by_algorithm

    get_hashers.cache_clear()
    get_hashers_by_algorithm.cache_clear()
    load_people(password=PASSWORD)
    v1 = world()
    lots(SITE, v1)
    per_variant = args.batches
    extra_units(len(PAGE_STEPS) + 4 * per_variant + 1)
    versions = {n: load_product(n) for n in PAGE_STEPS}
    product40 = versions[40].product
    page_batches = {}
    for n in PAGE_STEPS:
        b = start_batch(versions[n].product)
        fill_batch(b, n - 1)
        qc_results(b)
        device_points(b, DEVICE_POINTS)
        page_batches[n] = b.reference
    work = {key: [start_batch(product40) for _ in range(per_variant)]
            for key in ("api-argon2", "direct-argon2", "api-fast", "direct-fast")}
    tokens = {u: token_issue(actor=None, user=User.objects.get(username=u), name="bench", reason="benchmark")[1]
              for u in people}
    setup_s = time.perf_counter() - t0
    print(f"  {backend:<10} set-up {setup_s:.0f} s", flush=True)

    res: dict[str, Any] = {"backend": backend, "setup_s": setup_s, "records": {}, "page": {}}
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("ANALYZE")
    for hasher, hashers in (("argon2", ARGON2), ("fast", FAST)):
        set_hashers(hashers, people)
        # alternate API and direct batch by batch, so that a change in load weighs on both alike
        times: dict[str, list[float]] = {"api": [], "direct": []}
        for i in range(per_variant):
            for variant in (("api", "direct") if i % 2 == 0 else ("direct", "api")):
                times[variant] += measure_records([work[f"{variant}-{hasher}"][i]], variant, tokens)
        for variant, ts in times.items():
            ms = [1000 * x for x in ts]
            res["records"][f"{variant}-{hasher}"] = {
                "n": len(ts), "per_s": len(ts) / sum(ts), "p50_ms": pct(ms, 50), "p95_ms": pct(ms, 95),
                "max_ms": max(ms)}
            r = res["records"][f"{variant}-{hasher}"]
            print(f"  {backend:<10} {variant:<6} {hasher:<6} {r['n']} records: {r['per_s']:6.1f}/s  "
                  f"p50 {r['p50_ms']:.1f} ms  p95 {r['p95_ms']:.1f} ms", flush=True)
    set_hashers(ARGON2, people)
    for n in PAGE_STEPS:
        p = measure_page(page_batches[n], args.gets)
        res["page"][n] = p
        print(f"  {backend:<10} batch page, {n} steps: {p['queries']} queries, p50 {p['p50_ms']:.1f} ms, "
              f"p95 {p['p95_ms']:.1f} ms, max {p['max_ms']:.1f} ms; device fragment {p['device_queries']} queries, "
              f"p95 {p['device_p95_ms']:.1f} ms", flush=True)
    res["profile"] = profile_page(page_batches[40])
    print(f"  {backend:<10} batch page, 40 steps: {res['profile']['total_ms']:.1f} ms per GET, of which SQL "
          f"{res['profile']['sql_ms']:.1f} ms", flush=True)
    connection.close()
    out.put(res)


def in_process(target: Any, *args: Any) -> Any:
    """Run ``target(*args, out)`` in a forked process (its own Django set-up and connection) and
    return what it puts; fail if the process dies without a result."""
    import queue

    out = CTX.Queue()
    proc = CTX.Process(target=target, args=(*args, out))
    proc.start()
    while True:
        try:
            result = out.get(timeout=1)
            break
        except queue.Empty:
            if not proc.is_alive():
                raise SystemExit(f"{target.__name__} failed with exit code {proc.exitcode}") from None
    proc.join()
    return result


# --- databases and report ----------------------------------------------------------------------


def report(machine: dict[str, str], results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = ["Machine:", *[f"- {k}: {v}" for k, v in machine.items()], "",
             f"Step records ({args.batches} batch(es) of 40 steps per variant, one client, sequential)", "",
             "| backend | hasher | API records/s | API p50 / p95 ms | services records/s | services p50 / p95 ms "
             "| API layer cost |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in results:
        for h in ("argon2", "fast"):
            a, d = r["records"][f"api-{h}"], r["records"][f"direct-{h}"]
            lines.append(f"| {r['backend']} | {'Argon2id' if h == 'argon2' else 'MD5'} | {a['per_s']:.1f} | "
                         f"{a['p50_ms']:.1f} / {a['p95_ms']:.1f} | {d['per_s']:.1f} | {d['p50_ms']:.1f} / "
                         f"{d['p95_ms']:.1f} | {100 * (1 - a['per_s'] / d['per_s']):.1f} % |")
    lines += ["", f"Batch page ({args.gets} GETs; {QC_RESULTS} QC results, {DEVICE_POINTS:,} device points; "
              "n-1 of n steps recorded)", "",
              "| backend | steps | queries | p50 ms | p95 ms | max ms | CPU ms per GET | page KiB | other load (cores) "
              "| device fragment: queries, p50 / p95 ms |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        for n, p in r["page"].items():
            lines.append(f"| {r['backend']} | {n} | {p['queries']} | {p['p50_ms']:.1f} | {p['p95_ms']:.1f} | "
                         f"{p['max_ms']:.1f} | {p['cpu_ms']:.1f} | {p['bytes'] / 1024:.0f} | {p['other_cores']:.2f} | "
                         f"{p['device_queries']}, {p['device_p50_ms']:.1f} / "
                         f"{p['device_p95_ms']:.1f} |")
    lines.append("")
    for r in results:
        pr = r["profile"]
        lines.append(f"- {r['backend']}: 40-step page {pr['total_ms']:.1f} ms per GET, SQL {pr['sql_ms']:.1f} ms "
                     f"({100 * pr['sql_ms'] / pr['total_ms']:.0f} %); selectors.batch_page {pr['select_ms']:.1f} ms "
                     f"(SQL {pr['select_sql_ms']:.1f}), selectors.timeline {pr['timeline_ms']:.1f} ms (SQL "
                     f"{pr['timeline_sql_ms']:.1f}), the rest (template, middleware) "
                     f"{pr['total_ms'] - pr['select_ms'] - pr['timeline_ms']:.1f} ms; cyclic GC {pr['gc_ms']:.1f} ms "
                     f"({pr['gc_runs']:.1f} collections) per GET")
    pg = next((r for r in results if r["backend"] == "postgresql"), None)
    if pg:
        p95 = pg["page"][40]["p95_ms"]
        verdict = "met" if p95 < TARGET_P95_MS else "MISSED"
        lines.append(f"- target p95 < {TARGET_P95_MS:.0f} ms on PostgreSQL: {verdict} ({p95:.1f} ms)")
    for r in results:
        qs = [r["page"][n]["queries"] for n in PAGE_STEPS]
        lines.append(f"- {r['backend']}: queries for {'/'.join(map(str, PAGE_STEPS))} steps: "
                     f"{'/'.join(map(str, qs))} ({'constant' if len(set(qs)) == 1 else 'GROWS'})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--batches", type=int, default=2, help="batches of 40 records per variant (default 2)")
    parser.add_argument("--gets", type=int, default=200, help="GETs of the batch page per shape (default 200)")
    parser.add_argument("--quick", action="store_true", help="1 batch per variant, 40 GETs")
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument("--profile", action="store_true", help="print the cProfile summary of the page")
    args = parser.parse_args()
    if args.quick:
        args.batches, args.gets = 1, 40
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    started = time.perf_counter()
    machine = machine_info()
    print("Machine: " + "; ".join(f"{k} {v}" for k, v in machine.items()), flush=True)
    results = []
    for backend in backends:
        url = scratch.prepare(backend, DB_NAMES[backend])
        try:
            results.append(in_process(run_backend, backend, url, args))
        finally:
            if not args.keep:
                scratch.drop(backend, DB_NAMES[backend])
    print()
    print(report(machine, results, args))
    if args.profile:
        for r in results:
            print(f"\n--- {r['backend']}: cProfile of 5 GETs of the 40-step page\n{r['profile']['cprofile']}")
            print(f"--- {r['backend']}: the page's queries\n" + "\n".join(r["page"][40]["sql"]))
    print(f"\nTotal run time {time.perf_counter() - started:.0f} s.")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "results": results}, indent=1, default=str))


if __name__ == "__main__":
    main()
