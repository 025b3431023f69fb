"""How the generated permission test (tests/test_permission_matrix.py) names one training object at
a given site: a person of that site and a training record held there."""

from __future__ import annotations

from typing import Any

from django.utils import timezone


def _person(site: str) -> dict[str, Any]:
    from pocare.accounts.models import User

    return {"pk": User.objects.get(username=f"operator.{site.lower()}").pk}


def _record(site: str) -> dict[str, Any]:
    from pocare.accounts.models import User
    from pocare.network.models import Site
    from pocare.training.models import TrainingRecord
    from pocare.training.services import training_record
    from tests.training.helpers import creds

    found = TrainingRecord.objects.filter(site__code=site, trainee__username=f"operator.{site.lower()}").first()
    if found is None:
        manager = User.objects.get(username=f"manager.{site.lower()}")
        found = training_record(
            actor=manager, trainee=User.objects.get(username=f"operator.{site.lower()}"),
            site=Site.objects.get(code=site), kind="course", title="Permission matrix course",
            trained_on=timezone.now().date(), credentials=creds(manager),
        )
    return {"pk": found.pk}


OBJECTS = {
    "training:person": _person,
    "training:record": _record,
    "api-training-record": _record,
}
