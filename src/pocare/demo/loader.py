"""The whole demo, in the order a network would come to be: people, master file, sites' governance,
training, the history, the live batches, the quality system's follow-up and the comparability
monitor. ``pocare demo`` calls :func:`load`; so do tests that want the whole network."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.db import connection
from django.db.models import Min
from django.utils import timezone

from pocare.accounts.models import Membership, User
from pocare.analytics.services import comparability_monitor_run
from pocare.demo import batches, costs, masterfile, network, patients, quality, slots, supply, training
from pocare.demo.clock import demo_clock
from pocare.demo.history import HistorySummary, load_history
from pocare.demo.people import DEMO_PASSWORD, DemoLogin, inspector_access_grant, load_people, passwords_set

#: Master file v1 became effective this long before the history's first batch, and v2 this long
#: before the demo is loaded (after the last history batch started, before the live batches).
V1_BEFORE_HISTORY = dt.timedelta(days=14)
V2_BEFORE_NOW = dt.timedelta(days=20)
#: The people's training records are entered before the live work begins (lots a month before now).
TRAINING_RECORDED_BEFORE_NOW = dt.timedelta(days=32)
HISTORY_MONTHS = 18
#: The people were set up with their first password (this suffix on the demo's), and each set the
#: demo password when the load ends, so that it ages from the real time, not from the founding.
FIRST_PASSWORD_SUFFIX = "first"  # noqa: S105 (the demo's passwords are public)


def _founding(wanted: dt.datetime) -> dt.datetime:
    """When the network was founded: ``wanted``, or — where its people were loaded earlier (the test
    personas, or a first run of the demo) — just after the first of them joined, since nobody acts
    before their role is granted. (Not the last: a first run grants the inspector's access at its end,
    and a second run must not date its founding after that.)"""
    joined = Membership.objects.aggregate(first=Min("granted_at"))["first"]
    return wanted if joined is None or joined < wanted else joined + dt.timedelta(minutes=1)


def _analyze() -> None:
    """Statistics for the planner after the history's bulk load, on PostgreSQL. Autovacuum would gather them
    in time; where it is off or behind (it is off on the test server), the cost report's one statement, planned
    blind, was stopped after 16 minutes on the page benchmark's 11,658 batches; after ANALYZE the six sites'
    reports (about 1,950 batches each) were computed and signed in 3 minutes in all."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def load(*, password: str = DEMO_PASSWORD, history: bool = True, history_months: int = HISTORY_MONTHS,
         on_history: Callable[[HistorySummary], None] | None = None, extra_units_per_site: int = 0) -> list[DemoLogin]:
    """The whole demo: the network and its people, then its governance — the CD19 CAR-T master
    file (v1 effective, v2 from a change request), units, site authorizations, the Porto site in
    qualification, and signed training records (v2 effective at Madrid only, the other sites
    still on v1 until their operators are trained) — and, with ``history``, about 18 months of
    manufacturing history under v1 (``pocare.demo.history``; loaded, not executed), whose
    summary goes to ``on_history``; then the live batch record, executed through the services (a
    batch in progress at Madrid, an order ready to start at Lisbon, one to accept at Dublin); and the
    patients of each hospital at every stage of the pathway, some on those orders (``pocare.demo.patients``).
    Idempotent. ``extra_units_per_site`` grows the network's units, and so its history, for
    benchmarks at scale (the demo itself keeps two per site).

    Dated as a real network would be (``pocare.demo.clock``; the table in docs/demo.md): the
    people, v1, the units, the sites' authorizations, the suppliers' qualification and the v1
    training at the founding, before the history's first batch; the sites' stores and depot 60
    days ago, and a lot of medium at Munich 55 days ago (it expires 18 days from now); the people's
    qualification records a month ago (dated as trained); the live lots received into stock a month
    ago (``pocare.demo.supply``);
    v2 effective three weeks ago (after the last history batch started); the live batches on their
    process days before now; Porto's lifecycle now. Unit due dates and training expiry count from
    today; each person sets the demo password at the end, so that it ages from today."""
    now = timezone.now()
    final = password
    first = f"{password}-{FIRST_PASSWORD_SUFFIX}"
    founded = _founding(now - dt.timedelta(days=round(history_months * 30.4375)) - V1_BEFORE_HISTORY)
    password = first if not User.objects.filter(username="qa").exists() else final
    with demo_clock(founded):
        logins = load_people(password=password, inspector_access=False)
        v1 = masterfile.load_product_and_v1(password=password)
    with demo_clock(founded + dt.timedelta(days=1)):
        network.load_units(today=now.date(), extra_per_site=extra_units_per_site)  # due dates as today
        network.load_authorizations(product=v1.product, password=password)
        supply.load_suppliers(password=password)  # the suppliers the history's lots name, qualified
        costs.load_model(versions=[v1], password=password, effective_from=founded.date())  # every batch priced
    with demo_clock(founded + dt.timedelta(days=2)):
        training.load(password=password, versions=[v1], people=False)  # trained on v1 before the first batch
    network.load_porto(password=password)  # Porto's own chain: its lifecycle is today's
    with demo_clock(now - TRAINING_RECORDED_BEFORE_NOW):
        training.load(password=password, versions=[v1], today=now.date())
    with demo_clock(now - V2_BEFORE_NOW):
        change = masterfile.load_change_v2(password=password)
    with demo_clock(now - V2_BEFORE_NOW + dt.timedelta(days=1)):
        training.load(password=password, versions=[v1, change.version], today=now.date())
    with demo_clock(now - supply.STOCK_KEPT_FROM):
        supply.load_locations()  # the sites' stores and the Iberian depot (their stock: batches.load_lots)
    with demo_clock(now - supply.NEAR_EXPIRY.received_before_now):
        supply.load_near_expiry(password=password, expires=now.date() + supply.NEAR_EXPIRY.expires_after_now)
    if history:
        summary = load_history(months=history_months, now=now)
        _analyze()
        if on_history is not None:
            on_history(summary)
    batches.load_live(versions=[v1, change.version], password=password, now=now)
    supply.load_exchanges(password=password, now=now)  # transfers from the depot and purchase requests
    costs.load_lot_prices(password=password)  # version 2 of the cost model: the stock's vector lots' own price
    quality.load(password=password)
    slots.load(now=now)  # the hospitals' apheresis and infusion slots for booking (issue 17)
    patients.load(now=now)  # patients at every stage, some on the orders above (pocare.demo.patients)
    comparability_monitor_run()  # the comparability monitor over the history: signals for QA to resolve
    if history:
        costs.load_report(password=password, today=now.date())  # the network's signed cost report, 18 months
    if password == first:  # this load made the people: each sets the demo password now, to age from today
        passwords_set(new=final, set_before=founded + dt.timedelta(days=1))
    inspector_access_grant()
    return logins
