"""Release refusals on a batch ready for certification (POC-7, ATMP-OOS): only the QP certifies or
rejects, and nothing is requested out of specification when every result is in it. None of these
tests stores anything, so they share one batch made once for the module and rolled back at its end
(tests/worlds.py); the release tests that decide, print and dispatch are in test_release.py, each
on a batch of its own."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from pocare.manufacturing.models import Batch
from pocare.release import services
from pocare.release.models import Certification
from tests.manufacturing import helpers as h
from tests.release import helpers as rh
from tests.release.test_release import certify
from tests.worlds import built_once, clock_as_built, clock_at_build

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def _world(django_db_setup: Any, django_db_blocker: Any) -> Iterator[tuple[int, dt.datetime]]:
    def build() -> tuple[int, dt.datetime]:
        return rh.ready_batch("MAD").pk, clock_at_build()

    with built_once(django_db_blocker, build) as world:
        yield world


@pytest.fixture
def ready(_world: tuple[int, dt.datetime]) -> Batch:
    """The module's batch, read afresh, with the clock where making it left it."""
    pk, at = _world
    clock_as_built(at)
    return Batch.objects.get(pk=pk)


@pytest.mark.parametrize("who", ["qa", "manager.mad", "inspector", "qc.mad", "operator.mad", "physician.mad"])
def test_only_the_qp_certifies_or_rejects(ready, who):
    """POC-7: only the QP reaches the certify function — QA, the site, the inspector are refused."""
    with pytest.raises(PermissionDenied):
        certify(ready, who)
    with pytest.raises(PermissionDenied):
        services.batch_reject(actor=h.user(who), batch=ready, reason="x", credentials=h.creds(who))
    assert not Certification.objects.filter(batch=ready).exists()


def test_oos_request_only_when_an_attribute_is_out_of_specification(ready):
    """ATMP-OOS: never a checkbox — with every result in specification there is nothing to request."""
    with pytest.raises(ValidationError, match="nothing to request"):
        services.oos_request(actor=h.user("physician.mad"), batch=ready, clinical_justification="x",
                             credentials=h.creds("physician.mad"))
