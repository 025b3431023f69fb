"""Set-up for the work-queue tests, through the real services: a step that waits for its second
person, and the correction of one of its values."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from pocare.manufacturing import services
from pocare.manufacturing.models import StepExecution, StepValue
from tests.manufacturing import helpers as h


def free_unit(site_code: str) -> None:
    """One more qualified unit at the site, so that one more batch can start there."""
    from pocare.network.models import ManufacturingUnit, Site
    from pocare.network.services import unit_register

    h.world()
    today = timezone.now().date()
    unit_register(actor=h.user("qa"), site=Site.objects.get(code=site_code), device_type="clinimacs_prodigy",
                  serial=f"WQ-{site_code}-{ManufacturingUnit.objects.count()}", reason="test",
                  calibration_due=today + dt.timedelta(days=90), maintenance_due=today + dt.timedelta(days=90))


def awaiting_verification(site_code: str = "MAD", *, correctable: bool = False) -> tuple[object, str]:
    """A batch whose next step needs a second person, recorded by the site's operator and not
    verified: the receipt, or with ``correctable`` the first such step with a typed value to correct
    (the receipt's are read from the custody records; the test clock then moves to the step's day)."""
    free_unit(site_code)
    batch = h.started_batch(site_code)
    while True:
        _, step = services.next_step(batch)
        if step.get("second_person_verification") and (not correctable or any(
                p["type"] == "number" and p.get("min") is not None and p.get("max") is not None
                for p in step["parameters"])):
            break
        h.do_step(batch)
    h.into_window(batch, step)
    operator = h.user(f"operator.{site_code.lower()}")
    services.step_record(actor=operator, batch=batch, step_id=step["id"], values=h.good_values(step),
                         materials=h.material_lots(batch, step), credentials=h.creds(operator))
    return batch, step["id"]


def correct_a_value(batch: Any, step_id: str, *, reason: str) -> tuple[StepValue, StepValue]:
    """The operator corrects the step's first numeric value (still in range), with ``reason``:
    (original, correction)."""
    execution = StepExecution.objects.get(batch=batch, step_id=step_id)
    _, step = services._find(batch, step_id)
    spec = next(p for p in step["parameters"] if p["type"] == "number" and p.get("min") is not None
                and p.get("max") is not None)
    original = StepValue.objects.get(step=execution, parameter_id=spec["id"], corrects__isnull=True)
    new = spec["min"] + (spec["max"] - spec["min"]) * 0.6
    operator = h.user(f"operator.{batch.site.code.lower()}")
    correction = services.value_correct(actor=operator, value=original, new_value=new, reason=reason,
                                        credentials=h.creds(operator))
    return original, correction
