"""Benchmark of the FHIR endpoint (docs/fhir.md): a patient Bundle (``Patient/<id>/$everything``) read
over HTTP with a bearer token, its latency and its number of queries for a small and a large record,
and 1,000 ServiceRequest imports (``POST /fhir/ServiceRequest``) timed.

The records: a patient of Madrid's hospital with ``--small`` referrals (default 1) or ``--large``
(default 6), each referral linked to an accepted order with two apheresis collections (custody
services), a completed batch certified by the QP (the row the custody tests make), a consent, twelve
follow-up visits and four graded adverse events (rows: the services that make them are another part
of the app's). The imports are ServiceRequests with their Patient contained, each a new patient and
referral, through the Django test client (parsing, validation, the services, the ledger).

Usage::

    .venv/bin/python benchmarks/patients_fhir.py                  # both backends, about 3 minutes
    .venv/bin/python benchmarks/patients_fhir.py --backend sqlite --imports 200

Environment: ``BENCH_PG_URL`` (default ``postgres://postgres@127.0.0.1:5432``); the script (re)creates
and drops ``pocare_bench_fhir`` there and ``var/bench/fhir.sqlite3``. Nothing asserts on timing; the
target (a Bundle under 100 ms with a number of queries that does not grow with the record) is
reported as met or missed, for the wall-clock time and for the CPU time of the request in this process
(``time.process_time``: Django, the export and, on SQLite, the database; on PostgreSQL the server's
share is not in it). On a loaded machine the CPU time is the fairer measure of the code's own cost.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scratch
from ledger import BENCH_DIR, ROOT, machine_info

sys.path.insert(0, str(ROOT))  # tests.* helpers build the world as the tests do

DB_NAMES = {"sqlite": "fhir", "postgresql": "pocare_bench_fhir"}
TARGET_MS = 100.0


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def record(n_referrals: int, name: str) -> Any:
    """A patient with ``n_referrals`` referrals, each with its whole chain and follow-up."""
    from django.utils import timezone
    from tests.custody.helpers import accepted, certify, collect, completed_batch, effective_at, user

    from pocare.network.models import Site
    from pocare.patients.identity import Identity
    from pocare.patients.models import AdverseEvent, Consent, ConsentDocument, Referral, Visit, VisitStatus
    from pocare.patients.services import patient_register, referral_create

    physician = user("physician.mad")
    product = effective_at("MAD").product
    now = timezone.now()
    patient = patient_register(actor=physician, treating_site=Site.objects.get(code="MAD"),
                               identity=Identity(name=name, birth_date="1960-01-01"))
    document = ConsentDocument.objects.filter(code="BENCH-ICF").first() or ConsentDocument.objects.create(
        code="BENCH-ICF", product=product, version=1, language="en", title="Consent", body="…",
        content_hash="0" * 64, effective_from=now - dt.timedelta(days=400), issued_by=physician)
    for i in range(n_referrals):
        referral = referral_create(actor=physician, patient=patient, product=product, indication="r/r LBCL",
                                   weight_kg="70")
        order = accepted("MAD", recipient=patient.pseudonym)
        collect(order, ended=now - dt.timedelta(days=30, hours=i))
        second = collect(order, ended=now - dt.timedelta(days=29, hours=i))
        certify(completed_batch(order, second))
        Referral.objects.filter(pk=referral.pk).update(order=order, infused_at=now - dt.timedelta(days=20))
        Consent.objects.create(referral=referral, document=document, signed_at=now - dt.timedelta(days=40),
                               recorded_by=physician)
        day0 = (now - dt.timedelta(days=20)).date()
        for day in (7, 14, 21, 28, 60, 100, 180, 365, 730, 1095, 1460, 1825):
            Visit.objects.create(referral=referral, label=f"Day {day}", day=day, due_on=day0 + dt.timedelta(days=day),
                                 window_days=2, status=VisitStatus.DONE if day < 20 else VisitStatus.PLANNED,
                                 done_at=now - dt.timedelta(days=20 - day) if day < 20 else None)
        for k in range(4):
            AdverseEvent.objects.create(referral=referral, kind=("crs", "icans", "other", "crs")[k],
                                        onset_on=day0 + dt.timedelta(days=k + 1), grade=k % 4 + 1,
                                        reasons=["benchmark"], recorded_by=physician, recorded_at=now)
    return patient


def service_request(code: str, i: int) -> str:
    from pocare.patients.fhir import CS_PRODUCT, SID_SITE

    return json.dumps({
        "resourceType": "ServiceRequest",
        "contained": [
            {"resourceType": "Patient", "id": "p", "name": [{"text": f"Bench Patient {i}"}], "birthDate": "1970-01-01",
             "managingOrganization": {"identifier": {"system": SID_SITE, "value": "MAD"}}},
            {"resourceType": "Observation", "id": "w", "status": "final",
             "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
             "valueQuantity": {"value": 70, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}}],
        "identifier": [{"system": "urn:bench:his", "value": f"BENCH-{i:05d}"}],
        "status": "active", "intent": "order",
        "code": {"concept": {"coding": [{"system": CS_PRODUCT, "code": code}]}},
        "subject": {"reference": "#p"}, "reason": [{"concept": {"text": "r/r LBCL"}}],
        "supportingInfo": [{"reference": {"reference": "#w"}}]})


def run_backend(backend: str, url: str, runs: int, sizes: tuple[int, int], imports: int, out: Any) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["POCARE_VAR_DIR"] = str(BENCH_DIR)
    os.environ["POCARE_DEBUG"] = "0"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pocare.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.hashers import get_hashers, get_hashers_by_algorithm
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from tests.custody.helpers import effective_at, user

    import ebr
    from pocare.accounts.services import token_issue
    from pocare.demo.people import load_people

    settings.PASSWORD_HASHERS = ebr.FAST
    settings.ALLOWED_HOSTS = ["*"]
    get_hashers.cache_clear()  # type: ignore[attr-defined]
    get_hashers_by_algorithm.cache_clear()  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    load_people(password=ebr.PASSWORD)
    code = effective_at("MAD").product.code
    patients = {n: record(n, f"Bench Record {n}") for n in sizes}
    setup_s = time.perf_counter() - t0
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("ANALYZE")
    _, key = token_issue(actor=None, user=user("physician.mad"), name="bench", reason="benchmark")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    res: dict[str, Any] = {"backend": backend, "setup_s": setup_s, "queries": {}, "entries": {}, "ms": {}}
    for n, patient in patients.items():
        path = f"/fhir/Patient/{patient.pseudonym}/$everything"
        for _ in range(2):
            assert client.get(path).status_code == 200
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(path)
        res["queries"][n] = len(ctx.captured_queries)
        res["entries"][n] = len(response.json()["entry"])
        times, cpu = [], []
        for _ in range(runs):
            t, c = time.perf_counter(), time.process_time()
            response = client.get(path)
            cpu.append(1000 * (time.process_time() - c))
            times.append(1000 * (time.perf_counter() - t))
            assert response.status_code == 200
        res["ms"][n] = (pct(times, 50), pct(times, 95), max(times))
        res.setdefault("cpu_ms", {})[n] = pct(cpu, 50)
    times = []
    t_all, c_all = time.perf_counter(), time.process_time()
    for i in range(imports):
        body = service_request(code, i)
        t = time.perf_counter()
        response = client.post("/fhir/ServiceRequest", data=body, content_type="application/fhir+json")
        times.append(1000 * (time.perf_counter() - t))
        assert response.status_code == 201, response.content[:300]
    res["imports"] = {"n": imports, "total_s": time.perf_counter() - t_all, "cpu_s": time.process_time() - c_all,
                      "p50_ms": pct(times, 50),
                      "p95_ms": pct(times, 95), "max_ms": max(times)}
    res.update({"runs": runs, "load": os.getloadavg()[0]})
    small, large = sizes
    print(f"  {backend:<10} set-up {setup_s:.0f} s; Bundle p50 {res['ms'][large][0]:.1f} ms "
          f"(queries {res['queries'][small]}/{res['queries'][large]}); {imports} imports in "
          f"{res['imports']['total_s']:.1f} s", flush=True)
    connection.close()
    out.put(res)


def report(machine: dict[str, str], results: list[dict[str, Any]], sizes: tuple[int, int]) -> str:
    small, large = sizes
    lines = ["Machine:", *[f"- {k}: {v}" for k, v in machine.items()], ""]
    r0 = results[0]
    lines += [f"Patient Bundle over HTTP (bearer token, `GET /fhir/Patient/<id>/$everything`), {r0['runs']} reads "
              f"after 2 warm-up reads; a record of {small} referral(s) = {r0['entries'][small]} entries, of {large} "
              f"= {r0['entries'][large]} entries:", "",
              f"| backend | p50 ms ({small}) | p95 ms ({small}) | p50 ms ({large}) | p95 ms ({large}) "
              f"| max ms ({large}) | CPU ms p50 ({small}) | CPU ms p50 ({large}) | queries ({small}) "
              f"| queries ({large}) | target < 100 ms | load average (1 min) |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in results:
        s, big = r["ms"][small], r["ms"][large]
        verdict = (f"p50 {'met' if big[0] < TARGET_MS else 'MISSED'}, p95 {'met' if big[1] < TARGET_MS else 'MISSED'}"
                   f", CPU {'met' if r['cpu_ms'][large] < TARGET_MS else 'MISSED'}")
        lines.append(f"| {r['backend']} | {s[0]:.1f} | {s[1]:.1f} | {big[0]:.1f} | {big[1]:.1f} | {big[2]:.1f} | "
                     f"{r['cpu_ms'][small]:.1f} | {r['cpu_ms'][large]:.1f} | {r['queries'][small]} | "
                     f"{r['queries'][large]} | {verdict} | {r['load']:.2f} |")
    lines += ["", "ServiceRequest imports (`POST /fhir/ServiceRequest`, each a new patient and referral):", "",
              "| backend | imports | total s | CPU s | per second | p50 ms | p95 ms | max ms |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        i = r["imports"]
        lines.append(f"| {r['backend']} | {i['n']} | {i['total_s']:.1f} | {i['cpu_s']:.1f} | "
                     f"{i['n'] / i['total_s']:.0f} | {i['p50_ms']:.1f} | {i['p95_ms']:.1f} | {i['max_ms']:.1f} |")
    lines.append("")
    for r in results:
        q = r["queries"]
        lines.append(f"- {r['backend']}: queries {'constant' if q[small] == q[large] else 'GROW'} with the record "
                     f"({q[small]} at {small} referral(s), {q[large]} at {large})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--runs", type=int, default=100, help="Bundle reads timed per size (default 100)")
    parser.add_argument("--small", type=int, default=1, help="referrals of the small record (default 1)")
    parser.add_argument("--large", type=int, default=6, help="referrals of the large record (default 6)")
    parser.add_argument("--imports", type=int, default=1000, help="ServiceRequests imported (default 1,000)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases")
    parser.add_argument("--db-name", default=None, help="scratch database name of your own")
    args = parser.parse_args()
    if args.db_name:
        DB_NAMES.update(sqlite=args.db_name, postgresql=args.db_name)
    import ebr

    sizes = (args.small, args.large)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results = []
    try:
        for backend in backends:
            url = scratch.prepare(backend, DB_NAMES[backend])
            results.append(ebr.in_process(run_backend, backend, url, args.runs, sizes, args.imports))
    finally:
        if not args.keep:
            for backend in backends:
                scratch.drop(backend, DB_NAMES[backend])
    print()
    print(report(machine_info(), results, sizes))


if __name__ == "__main__":
    main()
