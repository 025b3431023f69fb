"""The patients app's work queues (``pocare.core.worklist``), registered from its ``AppConfig.ready()``
(``answers.register``): referrals whose eligibility waits to be assessed, eligible patients whose consent
waits to be recorded, and follow-up visits due — for the physician and the navigator of the treating
hospital."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext

from pocare.core.worklist import WorkItem, WorkQueue
from pocare.core.worklist import register as queue_register
from pocare.patients import followup_selectors, selectors
from pocare.patients.models import Referral


def _assess(referral: Referral) -> WorkItem:
    return WorkItem(f"{referral.patient.pseudonym} ({referral.patient.treating_site.code}): eligibility for "
                    f"{referral.product.name} to assess",
                    reverse("patients:eligibility", args=[referral.pk]), referral.stage_changed_at,
                    referral.patient.treating_site.time_zone,
                    late=referral.stage_changed_at < timezone.now() - selectors.LATE_AFTER)


def _consent(referral: Referral) -> WorkItem:
    return WorkItem(f"{referral.patient.pseudonym} ({referral.patient.treating_site.code}): eligible, consent to "
                    "record", reverse("patients:consent", args=[referral.pk]), referral.stage_changed_at,
                    referral.patient.treating_site.time_zone,
                    late=referral.stage_changed_at < timezone.now() - selectors.LATE_AFTER)


def _visit(visit: Any) -> WorkItem:
    patient = visit.referral.patient
    late = visit.due_on < timezone.now().date()
    what = (gettext("%(pseudonym)s (%(site)s): follow-up %(visit)s — overdue") if late
            else gettext("%(pseudonym)s (%(site)s): follow-up %(visit)s"))
    return WorkItem(what % {"pseudonym": patient.pseudonym, "site": patient.treating_site.code,
                            "visit": gettext(visit.label)},
                    reverse("patients:followup", args=[patient.pseudonym]) + f"#visit-{visit.pk}", visit.due_on,
                    late=late)


ELIGIBILITY = WorkQueue("patients-eligibility", "Eligibility to assess", selectors.referrals_to_assess, _assess,
                        lambda: reverse("patients:navigator") + "?stage=referred", when_label="Referred")
CONSENT = WorkQueue("patients-consent", "Consent to record", selectors.referrals_to_consent, _consent,
                    lambda: reverse("patients:navigator") + "?stage=eligible", when_label="Eligible since")
FOLLOW_UP = WorkQueue("followup_due", "Follow-up visits due", followup_selectors.visits_due, _visit,
                      when_label="Due")


def register() -> None:
    queue_register(ELIGIBILITY)
    queue_register(CONSENT)
    queue_register(FOLLOW_UP)
