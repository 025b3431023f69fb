"""Set-up for the quality tests, through the real services: the demo's escalation rules, a
deviation opened at a site, and a deviation carried to the point where it may be closed."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from django.utils import timezone

from pocare.accounts.models import User
from pocare.demo.quality import DEFAULT_RULES
from pocare.ledger.signing import SigningCredentials
from pocare.network.models import Site
from pocare.quality import services
from pocare.quality.models import Deviation, EscalationRule
from tests.conftest import PASSWORD

_numbers = itertools.count(1)


def user(username: str) -> User:
    return User.objects.get(username=username)


def creds(who: str) -> SigningCredentials:
    return SigningCredentials(username=who, password=PASSWORD)


def rules() -> None:
    """The demo's rules: critical → QA + QP, 30 days; major → QA, 30 days; minor → nobody, 60 days."""
    if not EscalationRule.objects.exists():
        for klass, roles, days in DEFAULT_RULES:
            services.escalation_rule_set(actor=user("qa"), deviation_class=klass, notify_roles=roles,
                                         investigation_days=days, reason="test rules")


def deviation(site: str = "MAD", *, opened_days_ago: int = 0, **kw: Any) -> Deviation:
    """A deviation raised by hand by the site's operator (opened ``opened_days_ago`` days ago)."""
    d = services.deviation_raise(actor=user(f"operator.{site.lower()}"), site=Site.objects.get(code=site),
                                 title=kw.pop("title", f"Test deviation {next(_numbers)}"),
                                 description=kw.pop("description", "Something departed from the master file."),
                                 **kw)
    if opened_days_ago:
        # Test set-up only: age the row (no service moves an opening date).
        Deviation.objects.filter(pk=d.pk).update(opened_at=timezone.now() - dt.timedelta(days=opened_days_ago))
        d.refresh_from_db()
    return d


def classify(d: Deviation, klass: str, who: str | None = None) -> Any:
    scores = {"critical": (5, 1, 1), "major": (4, 1, 1), "minor": (1, 1, 1)}[klass]
    return services.deviation_classify(actor=user(who or f"manager.{d.site.code.lower()}"), deviation=d,
                                       severity=scores[0], occurrence=scores[1], detectability=scores[2],
                                       rationale=f"test: {klass}")


def investigate(d: Deviation, *, root_cause: str = "Seal worn", category: str = "machine") -> Any:
    return services.investigation_record(actor=user(f"manager.{d.site.code.lower()}"), deviation=d,
                                         findings="Device log and batch record reviewed.", root_cause=root_cause,
                                         root_cause_category=category, reason="Investigation completed")


def capa(d: Deviation, *, done: bool = True, effectiveness_in_days: int | None = 60) -> Any:
    manager = user(f"manager.{d.site.code.lower()}")
    today = timezone.now().date()
    action = services.capa_action_add(
        actor=manager, deviation=d, kind="corrective", description="Replace the seal.", owner=manager,
        due_on=today + dt.timedelta(days=7),
        effectiveness_due_on=today + dt.timedelta(days=effectiveness_in_days) if effectiveness_in_days else None)
    if done:
        services.capa_action_done(actor=manager, action=action, note="Seal replaced.")
    return action


def assess(d: Deviation, impact: str = "negligible") -> Any:
    return services.deviation_impact_assess(actor=user("qa"), deviation=d, impact=impact,
                                            rationale="Specifications met.", credentials=creds("qa"))


def ready_to_close(site: str = "MAD", klass: str = "major") -> Deviation:
    """Classified, investigated with a root cause, CAPA done, impact assessed."""
    d = deviation(site)
    classify(d, klass)
    investigate(d)
    capa(d)
    assess(d)
    d.refresh_from_db()
    return d
