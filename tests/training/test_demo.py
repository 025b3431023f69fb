"""The demo's training: everything through the services, idempotent, and showing what the pages
are for — expiring and expired qualifications, a drill, a rotation, v2 effective at MAD only."""

from __future__ import annotations

import pytest

from pocare.demo import training as demo
from pocare.ledger.models import Event
from pocare.masterfile.selectors import effective_version
from pocare.training import selectors
from pocare.training.gate import step_gate
from pocare.training.models import TrainingKind, TrainingRecord, TrainingStatus
from pocare.training.selectors import CellState
from tests.conftest import PASSWORD
from tests.training.helpers import make_versions, site, user

pytestmark = pytest.mark.django_db


def test_the_demo_training_loads_once_and_shows_each_case():
    """P11-10i: signed training for every site's people; v2 effective at MAD and not yet at LIS."""
    versions = make_versions()
    demo.load(password=PASSWORD, versions=[versions.v1, versions.v2])
    events = Event.objects.count()
    demo.load(password=PASSWORD, versions=[versions.v1, versions.v2])
    assert Event.objects.count() == events  # idempotent

    assert effective_version(site=site("MAD"), product=versions.product) == versions.v2
    assert effective_version(site=site("LIS"), product=versions.product) == versions.v1
    for code in ("MAD", "LIS", "MUC", "GRO", "MIL", "DUB"):
        assert TrainingRecord.objects.filter(trainee__username=f"operator.{code.lower()}",
                                             status=TrainingStatus.COMPLETE).count() >= 6
    assert TrainingRecord.objects.filter(kind=TrainingKind.DRILL).exists()
    rotation = TrainingRecord.objects.get(kind=TrainingKind.ROTATION, trainee__username="operator.lis")
    assert rotation.site.code == "MAD"
    assert TrainingRecord.objects.filter(status=TrainingStatus.AWAITING_TRAINEE,
                                         trainee__username="operator.gro").exists()

    matrix = selectors.training_matrix(user("qa"))
    states = {c.state for r in matrix.rows for c in r.cells}
    assert {CellState.VALID, CellState.EXPIRING, CellState.EXPIRED} <= states
    assert step_gate(person=user("operator.mad"), version=versions.v2, step_id="expansion-harvest-decision",
                     site=site("MAD")).allowed
    lisbon = step_gate(person=user("operator.lis"), version=versions.v2, step_id="expansion-harvest-decision",
                       site=site("LIS"))
    assert not lisbon.allowed and any("not the effective version at LIS" in r for r in lisbon.reasons)
