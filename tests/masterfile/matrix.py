"""How the generated permission matrix (tests/test_permission_matrix.py) names master-file objects
at a site: a change request concerning only that site, and its proposed (draft) version — which a
site person of another site must not even see. Products are network-wide: their dossier needs the
reports permission, which no site role holds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _change(site: str) -> Any:
    from pocare.masterfile.models import ChangeRequest
    from tests.masterfile.helpers import raise_change

    existing = ChangeRequest.objects.filter(sites__code=site).first()  # only this helper raises them here
    return existing or raise_change(actor="qa2", sites=(site,))


def _cr(site: str) -> dict[str, Any]:
    return {"pk": _change(site).pk}


def _version(site: str) -> dict[str, Any]:
    from pocare.masterfile.models import MasterFileVersion

    return {"pk": MasterFileVersion.objects.get(change_request=_change(site)).pk}


def _product(site: str) -> dict[str, Any]:
    from tests.masterfile.helpers import effective_v1

    return {"code": effective_v1().product.code}


OBJECTS: dict[str, Callable[[str], dict[str, Any]]] = {
    "masterfile:version": _version,
    "masterfile:version_document": _version,
    "masterfile:version_submit": _version,
    "masterfile:version_review": _version,
    "masterfile:version_return": _version,
    "masterfile:version_approve": _version,
    "masterfile:version_effective": _version,
    "masterfile:change": _cr,
    "masterfile:change_reject": _cr,
    "masterfile:dossier": _product,
    "masterfile:dossier_pdf": _product,
    "api-masterfile-version": _version,
    "api-masterfile-change": _cr,
}
