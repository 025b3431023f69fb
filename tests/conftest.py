"""Shared test set-up: the demo network as personas, and safe transactional tests.

Personas (Healthchecks style) are the demo's people: ``people["qa"]``, ``people["operator.mad"]``,
``people["manager.lis"]``… so permission tests read like sentences. The demo is loaded once into
the test database through the real services. People with roles at two sites
(``people["operator.lis+navigator.mad"]``, see tests/personas.py) are made on first use.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest
from django.db import connection

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop

PASSWORD = "correct horse battery staple 42"


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing(django_test_environment: None) -> None:
    """Argon2 is what production uses (tests/accounts/test_passwords.py checks it); here, MD5
    keeps hundreds of logins fast. It changes nothing that is tested."""
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _real_clock():  # type: ignore[no-untyped-def]
    """Every test starts on the real clock; a test that moved it (tests/clock.py) gets it back."""
    from tests import clock

    yield
    clock.reset()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    with django_db_blocker.unblock():
        load_founding_people()


#: The personas joined this long before the tests run, so that the demo's live batches, dated over
#: the last weeks (pocare.demo.batches, the lots 30 days back), are done by people who held their roles
#: then (the demo's history in the tests reaches further back than the lots).
PEOPLE_JOINED_AGO_DAYS = 80


def load_founding_people() -> None:
    from django.utils import timezone

    from pocare.demo.clock import demo_clock
    from pocare.demo.people import inspector_access_grant, load_people, passwords_set

    joined = timezone.now() - dt.timedelta(days=PEOPLE_JOINED_AGO_DAYS)
    with demo_clock(joined):
        load_people(password=PASSWORD + " first", inspector_access=False)
    # As the demo does: each persona then sets the test password through the accounts service, so it
    # ages from today, and tests that move the clock through several batches (tests/clock.py) do not
    # meet an expired password.
    passwords_set(new=PASSWORD, set_before=joined + dt.timedelta(days=1))
    inspector_access_grant()  # the inspector's 90 days of access count from today, as in the demo


class People(dict):  # type: ignore[type-arg]
    def __missing__(self, username: str):  # type: ignore[no-untyped-def]
        from pocare.accounts.models import User
        from tests.personas import MULTI_ROLE, ensure_multi_role

        if username in MULTI_ROLE:
            user = ensure_multi_role(username, password=PASSWORD)
        else:
            user = User.objects.get(username=username)
        self[username] = user
        return user


@pytest.fixture
def people(db) -> People:  # type: ignore[no-untyped-def]
    return People()


@pytest.fixture
def tx_db(transactional_db):  # type: ignore[no-untyped-def]
    """A real, committing database (for concurrency, persistence across rollbacks, live server).

    Django flushes such a database after each test with DELETE/TRUNCATE, which the ledger's
    triggers refuse; so the triggers are installed for the test and dropped just before the flush.
    """
    from pocare.ledger import triggers

    triggers.install(connection)
    load_founding_people()
    yield
    drop_triggers()


def drop_triggers() -> None:
    """Drop the append-only triggers (what an attacker with database access would do)."""
    from pocare.ledger.triggers import expected_triggers

    with connection.cursor() as cur:
        for table, names in expected_triggers(connection.vendor).items():
            for name in names:
                if connection.vendor == "sqlite":
                    cur.execute(f"DROP TRIGGER IF EXISTS {name}")
                else:
                    cur.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")


@pytest.fixture
def login(client):  # type: ignore[no-untyped-def]
    """Log a persona in through the real login view; returns the client. A multi-role persona
    (tests/personas.py) is made on first use."""

    def _login(username: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
        from tests.personas import MULTI_ROLE, ensure_multi_role

        if username in MULTI_ROLE:
            ensure_multi_role(username, password=PASSWORD)
        response = client.post("/login/", {"username": username, "password": password})
        assert response.status_code == 302, response.content[:500]
        return client

    return _login


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):  # type: ignore[no-untyped-def]
    return {
        **browser_type_launch_args,
        "executable_path": "/usr/bin/chromium",
        "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"],
    }


_DATABASE_FIXTURES = {"db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback"}


def pytest_collection_modifyitems(config, items):  # type: ignore[no-untyped-def]
    """On PostgreSQL, run only the tests that use a database: the others (statistics, solvers,
    simulations, parsers) give the same result on either backend and have already run on SQLite in
    `make test`. `POCARE_PG_ALL_TESTS=1` runs them all."""
    from django.db import connection

    if connection.vendor != "postgresql" or os.environ.get("POCARE_PG_ALL_TESTS"):
        return
    keep, drop = [], []
    for item in items:
        uses_db = item.get_closest_marker("django_db") or _DATABASE_FIXTURES & set(getattr(item, "fixturenames", ()))
        (keep if uses_db else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# --- files that jobs make (pocare.jobs.files) --------------------------------------------------------


@pytest.fixture(autouse=True)
def _job_files(settings, tmp_path_factory):  # type: ignore[no-untyped-def]
    """Files jobs make go to a directory of the test run, never the worktree's var/files."""
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path_factory.getbasetemp() / "job-files")}}}


@pytest.fixture
def patient_keys(settings, tmp_path):  # type: ignore[no-untyped-def]
    """Patients' identities sealed with keys of the test's own, in a file outside the database
    (PAT-PRIVACY; ``settings.POCARE_PATIENT_KEYS``)."""
    from pocare.patients import identity

    settings.POCARE_PATIENT_KEYS = tmp_path / "patient-keys" / "keys.json"
    identity.keys_forget()
    yield
    identity.keys_forget()
