"""The training matrix, version-training gaps and what each person may see (P11-10i, P11-10g)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from pocare.accounts.roles import Role
from pocare.training import selectors, services
from pocare.training.models import CurriculumItem
from pocare.training.selectors import CellState
from tests.training.helpers import (
    creds,
    make_versions,
    newcomer,
    qualification,
    site,
    site_trained,
    train,
    train_version,
    user,
)

pytestmark = pytest.mark.django_db


def _curriculum(role: str, *codes: str) -> None:
    for code in codes:
        q = qualification(code)
        if not CurriculumItem.objects.filter(role=role, qualification=q).exists():
            services.curriculum_item_add(actor=user("qa"), role=role, qualification=q, reason="test")


def _cell(matrix, username: str, code: str):
    row = next(r for r in matrix.rows if r.person.username == username)
    return next(c for c in row.cells if c.qualification.code == code)


def test_the_matrix_shows_valid_expiring_expired_revoked_and_missing(people):
    """P11-10i: each cell says where the person stands, with the date; within 30 days is expiring."""
    _curriculum(Role.OPERATOR, "gmp-basics", "aseptic-processing", "cell-counting", "cryopreservation",
                "prodigy-operation")
    qualification("gmp-basics")
    person = newcomer("trainee.muc", "Maria Trainee")
    train("trainee.muc", qualification_code="aseptic-processing", days_ago=20)  # 12 months: valid
    train("trainee.muc", qualification_code="cell-counting", days_ago=350)  # expires in ~15 days
    train("trainee.muc", qualification_code="prodigy-operation", days_ago=400)  # expired
    train("trainee.muc", qualification_code="cryopreservation", days_ago=30)
    services.qualification_revoke(actor=people["qa"], person=person,
                                  qualification=qualification("cryopreservation"), reason="test")
    matrix = selectors.training_matrix(people["qa"], site=site("MUC"))
    assert _cell(matrix, "trainee.muc", "aseptic-processing").state == CellState.VALID
    expiring = _cell(matrix, "trainee.muc", "cell-counting")
    assert expiring.state == CellState.EXPIRING and 0 < expiring.days_left <= 30
    assert expiring.text.startswith("expires ")
    expired = _cell(matrix, "trainee.muc", "prodigy-operation")
    assert expired.state == CellState.EXPIRED and expired.valid_until < timezone.now()
    assert _cell(matrix, "trainee.muc", "cryopreservation").state == CellState.REVOKED
    missing = _cell(matrix, "trainee.muc", "gmp-basics")
    assert missing.state == CellState.MISSING and missing.required and missing.text == "missing"
    assert matrix.expiring >= 1 and matrix.expired >= 1
    assert {r.site.code for r in matrix.rows} == {"MUC"}


def test_the_matrix_is_scoped_to_what_the_viewer_may_see(people):
    """P11-10g: a site sees its own people; the Control Site sees the network; others see nothing."""
    _curriculum(Role.OPERATOR, "gmp-basics")
    own = selectors.training_matrix(people["manager.mad"])
    assert own.rows and {r.site.code for r in own.rows} == {"MAD"}
    assert selectors.training_matrix(people["manager.mad"], site=site("LIS")).rows == []
    network = selectors.training_matrix(people["inspector"])
    assert {"MAD", "LIS", "MUC", "GRO", "MIL", "DUB"} <= {r.site.code for r in network.rows}
    assert selectors.training_matrix(people["physician.mad"]).rows == []


def test_a_past_moment_shows_the_matrix_as_it_was(people):
    """DI-ALCOA: before its record was signed by the trainee, a qualification did not count."""
    _curriculum(Role.OPERATOR, "qc-flow-cytometry")
    record = train("operator.mil", qualification_code="qc-flow-cytometry", days_ago=3, sign=False)
    before = timezone.now()
    services.training_acknowledge(actor=people["operator.mil"], record=record,
                                  credentials=creds(people["operator.mil"]))
    now = selectors.training_matrix(people["qa"], site=site("MIL"))
    assert _cell(now, "operator.mil", "qc-flow-cytometry").state == CellState.VALID
    then = selectors.training_matrix(people["qa"], site=site("MIL"), at=before)
    assert _cell(then, "operator.mil", "qc-flow-cytometry").state == CellState.MISSING


def test_version_training_gaps_list_each_operator_and_the_steps_they_lack():
    """P11-10i POC-1: a site is trained on a version when no operator lacks a required step."""
    versions = make_versions()
    site_trained(versions.v1, "MAD")  # training is cumulative: v1 first
    changed = versions.changed
    assert len(changed) >= 2  # v2 changes more than one step
    gaps = selectors.version_training_gaps(site=site("MAD"), version=versions.v2)
    assert [(p.username, steps) for p, steps in gaps] == [("operator.mad", changed)]
    before = timezone.now()
    train_version("operator.mad", versions.v2, steps=changed[:1])
    gaps = selectors.version_training_gaps(site=site("MAD"), version=versions.v2)
    assert [(p.username, steps) for p, steps in gaps] == [("operator.mad", changed[1:])]
    train_version("operator.mad", versions.v2, steps=changed[1:])
    assert selectors.version_training_gaps(site=site("MAD"), version=versions.v2) == []
    assert selectors.version_training_gaps(site=site("MAD"), version=versions.v2, at=before)  # not yet then
    assert selectors.version_training_gaps(site=site("LIS"), version=versions.v2)  # Lisbon is not trained


def test_training_records_are_scoped_to_the_sites_people(people):
    """P11-10g: a site sees its records and its people's rotations elsewhere, not other sites' records."""
    mad = train("operator.mad", title="Madrid course")
    lis = train("operator.lis", title="Lisbon course")
    rotation = train("operator.lis", site_code="MAD", trainer="manager.mad", kind="rotation", title="Rotation")
    assert set(selectors.records_visible(people["manager.mad"]).values_list("pk", flat=True)) >= {mad.pk, rotation.pk}
    assert lis.pk not in selectors.records_visible(people["manager.mad"]).values_list("pk", flat=True)
    lisbon = set(selectors.records_visible(people["operator.lis"]).values_list("pk", flat=True))
    assert {lis.pk, rotation.pk} <= lisbon and mad.pk not in lisbon
    assert {mad.pk, lis.pk, rotation.pk} <= set(selectors.records_visible(people["qp"]).values_list("pk", flat=True))
    assert not selectors.records_visible(people["planner"]).exists()
    assert people["operator.lis"] not in selectors.people_visible(people["manager.mad"])
    assert people["operator.lis"] in selectors.people_visible(people["inspector"])


def test_qualifications_of_lists_only_those_in_force(people):
    """P11-10i: what a person holds at a moment, latest expiry first; expired grants are not listed."""
    old = train("operator.gro", qualification_code="qc-flow-cytometry", days_ago=400)
    new = train("operator.gro", qualification_code="cell-counting", days_ago=10)
    held = selectors.qualifications_of(people["operator.gro"])
    assert new.pk in {g.record_id for g in held} and old.pk not in {g.record_id for g in held}
    assert [g.valid_until for g in held] == sorted((g.valid_until for g in held), reverse=True)
