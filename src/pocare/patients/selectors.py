"""Reads of the patients app, scoped to what the person may see (docs/patients.md).

A patient is seen under their pseudonym by whoever holds PATIENTS_VIEW at the treating hospital (and
by the Control Site's QA and QP, network-wide); their identifying data only by PATIENTS_IDENTIFY
holders at the treating hospital, through ``services.patient_identity_view``, which records the reading.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from pocare.accounts.roles import Perm
from pocare.accounts.selectors import sites_with_perm
from pocare.patients.models import Patient


def patients_visible(user: Any, perm: Perm = Perm.PATIENTS_VIEW) -> QuerySet[Patient]:
    """The patients whose treating hospital is a site where ``user`` holds ``perm``."""
    sites = sites_with_perm(user, perm)
    patients = Patient.objects.select_related("treating_site")
    return patients if sites is None else patients.filter(treating_site_id__in=sites)


def patient_visible(user: Any, pseudonym: str, perm: Perm = Perm.PATIENTS_VIEW) -> Patient | None:
    """The patient of that pseudonym if ``user`` may see them with ``perm``; else None (a pseudonym
    elsewhere is not confirmed to exist)."""
    if not pseudonym or len(pseudonym) > 20:
        return None
    return patients_visible(user, perm).filter(pseudonym=pseudonym).first()
