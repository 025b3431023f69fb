"""How the generated permission test names quality objects at a site: a deviation raised there by
hand, and a quality signal raised there by the comparability monitor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _deviation(site: str) -> dict[str, Any]:
    from pocare.quality.models import Deviation
    from tests.quality.helpers import deviation

    d = Deviation.objects.filter(site__code=site, status="open").first() or deviation(site)
    return {"reference": d.reference}


def _signal(site: str) -> dict[str, Any]:
    from pocare.network.models import Site
    from pocare.quality.models import QualitySignal
    from pocare.quality.services import signal_raise
    from tests.masterfile.helpers import product

    s = QualitySignal.objects.filter(site__code=site, status="open").first()
    if s is None:
        s, _ = signal_raise(site=Site.objects.get(code=site), product=product(), attribute_id="viability",
                            rule="we-1", summary="One point beyond 3 sigma", evidence={"points": [61.0]},
                            fingerprint=f"matrix-{site}")
    return {"pk": s.pk}


OBJECTS: dict[str, Callable[[str], dict[str, Any]]] = {
    "quality:deviation": _deviation,
    "api-deviation": _deviation,
    "api-deviation-classify": _deviation,
    "api-deviation-close": _deviation,
    "api-signal-resolve": _signal,
}
