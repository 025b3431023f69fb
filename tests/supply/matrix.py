"""How the generated permission test (tests/test_permission_matrix.py) names a recall at a site: the recall of
a lot received at that site (opened by Control Site QA through the service, once per site). A site person
sees the recalls of lots their site holds; another site's recall does not exist for them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _recall(site: str) -> dict[str, Any]:
    import datetime as dt

    from django.utils import timezone

    from pocare.manufacturing.services import lot_receive
    from pocare.network.models import Site
    from pocare.supply import recall
    from pocare.supply.models import Recall
    from tests.manufacturing import helpers as h

    number = f"MATRIX-RCL-{site}"  # a lot of its own, in quarantine: no batch of another test picks it up
    found = Recall.objects.filter(material_code="SYR-5ML", lot_number=number).first()
    if found is None:
        h.world()
        lot_receive(actor=h.user(f"qc.{site.lower()}"), site=Site.objects.get(code=site), material_code="SYR-5ML",
                    name="Sterile syringe 5 mL", lot_number=number, reason="Matrix lot",
                    expiry_date=timezone.now().date() + dt.timedelta(days=300))
        found = recall.recall_open(actor=h.user("qa"), material_code="SYR-5ML", lot_number=number,
                                   reason="Matrix recall", credentials=h.creds("qa"))
    return {"reference": found.reference}


OBJECTS: dict[str, Callable[[str], dict[str, Any]]] = {"supply:recall": _recall}


def _lot(site: str) -> dict[str, Any]:
    """A lot received into the site's store (a stock card to read)."""
    from pocare.manufacturing.models import MaterialLot
    from tests.supply import helpers as s

    found = MaterialLot.objects.filter(site__code=site, movements__isnull=False).first()
    return {"pk": (found or s.received(5, site_code=site)).pk}


OBJECTS["supply:lot"] = _lot
OBJECTS["api-stock-first-out"] = lambda site: {"site": site, "material_code": "SYR-5ML"}


def _transfer(site: str) -> dict[str, Any]:
    """A transfer from the site's depot to a third site (neither the persona's own nor the other site's
    people send or receive it: for them it is another site's): Munich, or Groningen from Munich."""
    from pocare.supply import transfers
    from pocare.supply.models import LocationKind, Transfer
    from tests.manufacturing import helpers as h
    from tests.supply import helpers as s

    third = "GRO" if site == "MUC" else "MUC"
    found = Transfer.objects.filter(source__site__code=site).first()
    if found is None:
        depot = s.store(site, "DEPOT", kind=LocationKind.DEPOT, serves=(third,))
        lot = s.received(5, site_code=site, location=depot)
        s.storage(lot.material_code)
        found = transfers.transfer_dispatch(
            actor=h.user(f"qc.{site.lower()}"), source=depot, destination=s.store(third), lot=lot, quantity=1,
            logger_id="MATRIX", carrier="Matrix", seal="M-1", reason="Matrix")
    return {"reference": found.reference}


def _purchase(site: str) -> dict[str, Any]:
    """A purchase request raised by the site's QC analyst."""
    from pocare.network.models import Site
    from pocare.supply import purchases
    from pocare.supply.models import PurchaseRequest
    from tests.manufacturing import helpers as h
    from tests.supply import helpers as s

    found = PurchaseRequest.objects.filter(site__code=site).first()
    if found is None:
        s.store(site)
        found = purchases.purchase_request(actor=h.user(f"qc.{site.lower()}"), site=Site.objects.get(code=site),
                                           material_code=s.SYRINGE, supplier=s.supplier(), quantity=10,
                                           reason="Matrix")
    return {"reference": found.reference}


OBJECTS["supply:transfer"] = _transfer
OBJECTS["supply:transfer_disposition"] = _transfer
OBJECTS["supply:purchase"] = _purchase
