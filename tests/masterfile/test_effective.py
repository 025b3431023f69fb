"""Which version is effective at a site: the newest one made effective that the site is authorized for
and its operators are trained on; until then the site keeps the previous one."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from pocare.masterfile.models import MasterFileVersion
from pocare.masterfile.selectors import effective_version, effective_versions_by_site, required_training_steps
from pocare.network.models import Site
from tests.masterfile.helpers import authorize, carry_to_approved, effective_v1, make_effective, raise_change, train

pytestmark = pytest.mark.django_db


def _site(code):
    return Site.objects.get(code=code)


@pytest.fixture
def v1_at_mad_and_lis():
    """v1 effective, MAD and LIS authorized from v1 and their operators trained on all of v1."""
    v1 = effective_v1()
    for code in ("MAD", "LIS"):
        authorize(code)
        train(v1, code)
    return v1


def test_the_first_version_needs_training_on_every_step():
    """P11-10i: a first version is trained whole."""
    v1 = effective_v1()
    assert len(required_training_steps(v1)) == 15


def test_no_version_is_effective_at_a_site_without_authorization(v1_at_mad_and_lis):
    """POC-1: a product is made only at a site listed for it."""
    v1 = v1_at_mad_and_lis
    assert effective_version(site=_site("MAD"), product=v1.product) == v1
    assert effective_version(site=_site("GRO"), product=v1.product) is None  # not authorized


def test_no_version_is_effective_while_operators_are_untrained():
    """POC-1 P11-10i: authorization alone is not enough; the site's operators must be trained."""
    v1 = effective_v1()
    authorize("MUC")
    assert effective_version(site=_site("MUC"), product=v1.product) is None
    train(v1, "MUC", steps=required_training_steps(v1)[:5])  # partly trained
    assert effective_version(site=_site("MUC"), product=v1.product) is None
    train(v1, "MUC")
    assert effective_version(site=_site("MUC"), product=v1.product) == v1


def test_a_new_version_is_effective_only_where_operators_are_trained_on_the_changed_steps(v1_at_mad_and_lis):
    """POC-1 P11-10i CMP-SITE: v2 is effective at MAD once trained; LIS keeps v1 until its operators are."""
    v1 = v1_at_mad_and_lis
    cr = raise_change()
    v2 = make_effective(carry_to_approved(MasterFileVersion.objects.get(change_request=cr)))
    mad, lis = _site("MAD"), _site("LIS")
    assert effective_version(site=mad, product=v1.product) == v1
    train(v2, "MAD")  # only the changed steps
    assert effective_version(site=mad, product=v1.product) == v2
    assert effective_version(site=lis, product=v1.product) == v1
    _, rows = effective_versions_by_site(v1.product)
    by_code = {r.site.code: r for r in rows}
    assert by_code["MAD"].effective == v2 and [c.state for c in by_code["MAD"].cells] == ["effective", "earlier"]
    assert by_code["LIS"].effective == v1 and [c.state for c in by_code["LIS"].cells] == ["training", "effective"]
    assert "Tiago Ferreira" in by_code["LIS"].cells[0].detail
    assert by_code["GRO"].effective is None and by_code["GRO"].cells[0].state == "unauthorized"


def test_the_effective_version_at_a_past_moment_is_what_was_in_force_then(v1_at_mad_and_lis):
    """DI-ALCOA POC-1: the answer at a past moment ignores what happened later."""
    v1 = v1_at_mad_and_lis
    before_v2 = timezone.now()
    cr = raise_change()
    v2 = make_effective(carry_to_approved(MasterFileVersion.objects.get(change_request=cr)))
    train(v2, "MAD")
    mad = _site("MAD")
    assert effective_version(site=mad, product=v1.product) == v2
    assert effective_version(site=mad, product=v1.product, at=before_v2) == v1
    assert effective_version(site=mad, product=v1.product, at=before_v2 - dt.timedelta(days=365)) is None


def test_an_approved_version_not_yet_effective_is_shown_as_pending(v1_at_mad_and_lis):
    """POC-4: the sites table shows what happens when the approved version is made effective."""
    v1 = v1_at_mad_and_lis
    cr = raise_change()
    v2 = carry_to_approved(MasterFileVersion.objects.get(change_request=cr))
    train(v2, "MAD")
    _, rows = effective_versions_by_site(v1.product)
    by_code = {r.site.code: r for r in rows}
    assert by_code["MAD"].effective == v1 and by_code["MAD"].cells[0].state == "pending"
    assert by_code["LIS"].cells[0].state == "pending_training"
