"""Derived step parameters are never typed (issue 15, "one fact, one value"): a value given for
one is refused, naming the field, and nothing is stored. These cases store nothing, so they share
one started batch, made once for the module and rolled back at its end (tests/worlds.py); the
other derived-parameter tests are in test_derived.py."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from pocare.manufacturing import services
from pocare.manufacturing.models import Batch, StepValue
from tests.manufacturing import helpers as h
from tests.worlds import built_once, clock_as_built, clock_at_build

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def _world(django_db_setup: Any, django_db_blocker: Any) -> Iterator[tuple[int, dt.datetime]]:
    def build() -> tuple[int, dt.datetime]:
        return h.started_batch("MAD").pk, clock_at_build()

    with built_once(django_db_blocker, build) as world:
        yield world


@pytest.fixture
def batch(_world: tuple[int, dt.datetime]) -> Batch:
    """The module's batch, read afresh, with the clock where starting it left it."""
    pk, at = _world
    clock_as_built(at)
    return Batch.objects.get(pk=pk)


@pytest.mark.parametrize("typed", [3.5, True, "12", 0])
def test_a_typed_value_for_a_derived_parameter_is_refused_naming_it_and_nothing_is_stored(batch, typed):
    """A derived value is not typed: a value given for it is refused (naming the field), not stored."""
    step = services.step_definition(batch, "receipt-identity")
    actor = h.performer_for(batch, step)
    with pytest.raises(ValidationError) as refused:
        services.step_record(actor=actor, batch=batch, step_id="receipt-identity", values={"transit-time": typed},
                             credentials=h.creds(actor))
    assert "not typed" in " ".join(refused.value.message_dict["values.transit-time"])
    assert not StepValue.objects.filter(step__batch=batch).exists()
