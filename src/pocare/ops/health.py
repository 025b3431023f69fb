"""The installation's own health checks: the database, its migrations, the trail's digest store
and the ledger's append-only triggers (docs/operations.md, "Monitoring").

Each is registered with :data:`pocare.core.monitoring.HEALTH_CHECKS` in ``OpsConfig.ready()``;
other apps (the job queue) register theirs. :func:`health_run` asks them all, and a check that
raises is reported as failing with the kind of error, never the error's text (a driver's message
can carry a host or a user name), so that one broken part never hides the others.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from pocare.core.monitoring import HEALTH_CHECKS, HealthCheck
from pocare.ledger import anchoring, triggers


def database_check() -> HealthCheck:
    """One query answered, and how long it took."""
    started = time.perf_counter()
    with connections[DEFAULT_DB_ALIAS].cursor() as cur:
        cur.execute("SELECT 1")
        cur.fetchone()
    ms = (time.perf_counter() - started) * 1000
    vendor = connections[DEFAULT_DB_ALIAS].vendor
    return HealthCheck("database", True, f"{vendor} answered in {ms:.1f} ms", {"query_seconds": ms / 1000})


def migrations_check() -> HealthCheck:
    """Every migration this code ships is applied (a server started before `pocare migrate`
    finished, or a new release run against an old database, fails here). About 6 ms."""
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    names = [f"{migration.app_label}.{migration.name}" for migration, _ in plan]
    if names:
        return HealthCheck("migrations", False, f"{len(names)} not applied (run `pocare migrate`): "
                           + ", ".join(names[:5]) + (" …" if len(names) > 5 else ""),
                           {"unapplied": len(names)})
    return HealthCheck("migrations", True, f"all {len(executor.loader.graph.nodes)} applied", {"unapplied": 0})


def digests_check() -> HealthCheck:
    """The digest store answers: the latest signed digest reads back and verifies against a trusted
    key, the directory (when the store is one) is writable by this process, and the latest anchor
    is younger than ``POCARE_ANCHOR_MAX_AGE_MINUTES``. A store that stops taking digests (object
    storage, which cannot be probed without writing to it for ever) shows as a growing age."""
    store = anchoring.DigestStore()
    limit = settings.POCARE_ANCHOR_MAX_AGE_MINUTES
    problems = []
    if isinstance(store.storage, FileSystemStorage):
        location = str(store.storage.location)
        if not os.path.isdir(location):
            problems.append("the digest directory does not exist")
        elif not os.access(location, os.W_OK | os.X_OK):
            problems.append("the digest directory is not writable by this process")
    name, signed_at, why = anchoring.latest_digest(store)
    if signed_at is None:
        problems.append(f"the latest digest {name} does not verify: {why}" if name else
                        f"{why} (run `pocare audit anchor`)")
        return HealthCheck("digests", False, "; ".join(problems), {"readable": 0})
    age = (timezone.now() - signed_at).total_seconds()
    if age > limit * 60:
        problems.append(f"the latest anchor is {age / 60:,.0f} minutes old, more than {limit}: is anchoring running?")
    summary = "; ".join(problems) or f"latest digest {name}, {age / 60:,.0f} minutes old, signed by a trusted key"
    return HealthCheck("digests", not problems, summary, {"readable": 1, "latest_anchor_age_seconds": round(age, 3)})


def triggers_check() -> HealthCheck:
    """The ledger's append-only triggers are in place, and are the ones recorded by the latest
    digest or install (the check of `pocare audit triggers`)."""
    connection = connections[DEFAULT_DB_ALIAS]
    absent = triggers.missing(connection)
    if absent:
        return HealthCheck("triggers", False, f"append-only triggers missing: {', '.join(absent)}",
                           {"missing": len(absent), "changed": 0})
    against, changed = anchoring.triggers_since_recorded()
    if changed:
        return HealthCheck("triggers", False, f"changed since {against} with no install recorded: "
                           f"{', '.join(changed)}", {"missing": 0, "changed": len(changed)})
    return HealthCheck("triggers", True, "all in place" + (f", as recorded by {against}" if against else
                                                           "; nothing recorded yet to compare them with"),
                       {"missing": 0, "changed": 0})


def check_name(answerer: str) -> str:
    """A check's name from its answerer's (``pocare.ops.health.database_check`` → ``database``)."""
    return answerer.rsplit(".", 1)[-1].removesuffix("_check").removesuffix("_health")


def check_names() -> list[str]:
    """The names ``/health/?only=`` accepts."""
    return [check_name(name) for name, _ in HEALTH_CHECKS.each()]


def health_run(only: Iterable[str] | None = None) -> list[HealthCheck]:
    """Every registered check's result (or of those named in ``only``), in registration order."""
    wanted = set(only) if only is not None else None
    results: list[HealthCheck] = []
    for name, answerer in HEALTH_CHECKS.each():
        if wanted is not None and check_name(name) not in wanted:
            continue
        try:
            answer = answerer()
        except Exception as exc:
            results.append(HealthCheck(check_name(name), False, f"the check failed: {type(exc).__name__}"))
            continue
        results += answer if isinstance(answer, list) else [answer]
    return results
