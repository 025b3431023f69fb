"""The release certificate (ATMP-REL, A11-8, P11-50, ATMP-OOS): generated from the Certification and
the checklist snapshot it stores — what the QP relied on, not a re-evaluation — with the QP's
signature manifestation (printed name, date and time in the site's zone with UTC beside it, meaning).

Each result row states the attribute's acceptance criterion (from the batch's master-file version,
which a batch never changes), the result and whether it conforms. Times follow
:mod:`pocare.core.times`, as the pages do; units :mod:`pocare.core.units` (``10⁶ cells/kg``), while the
snapshot the QP signed keeps them as the master file writes them."""

from __future__ import annotations

from typing import Any

from pocare.core.times import site_time
from pocare.core.units import unit_text
from pocare.ledger.canonical import content_hash
from pocare.ledger.models import Signature
from pocare.release.checklist import acceptance_text
from pocare.release.models import Certification

STATE_TEXT = {"pass": "pass", "fail": "FAIL", "pending": "pending after release", "not_applicable": "not applicable"}
RESULT_TEXT = {"pass": "in specification", "oos": "OUT OF SPECIFICATION",
               "pending_after_release": "pending — result after release", "missing": "MISSING"}
#: Conformity of a result to its acceptance criterion, as the certificate prints it.
CONFORMITY = {"pass": "pass", "oos": "FAIL", "missing": "FAIL", "pending_after_release": "pending"}


def result_rows(cert: Certification) -> list[dict[str, Any]]:
    """One row per attribute of the specification: criterion, the result the QP relied on, conformity."""
    results = {r["attribute"]: r for r in (cert.checklist or {}).get("results", [])}
    spec = (cert.batch.masterfile_version.content or {}).get("specification", {}).get("attributes", [])
    rows = []
    for a in spec:
        r = results.get(a["id"], {})
        state = r.get("state", "")
        rows.append({"name": a.get("name", a["id"]), "method": a.get("method", ""),
                     "release_critical": bool(a.get("release_critical")), "acceptance": unit_text(acceptance_text(a)),
                     "value": unit_text(r.get("value", "")), "state": state, "state_text": RESULT_TEXT.get(state, ""),
                     "conformity": CONFORMITY.get(state, "—"), "corrected": bool(r.get("corrected"))})
    return rows


def certificate_context(cert: Certification) -> dict[str, Any]:
    """Everything the certificate template prints."""
    batch = cert.batch
    site = batch.site
    signature = (Signature.objects.filter(record_type="release.Certification", record_id=str(cert.pk))
                 .order_by("signed_at").first())
    valid = signature is not None and signature.record_hash == content_hash(cert.signed_content())
    snapshot = cert.checklist or {}
    oos = cert.oos_release
    signed_at = signature.signed_at if signature is not None else cert.decided_at
    return {
        "cert": cert, "batch": batch, "site": site, "order": batch.order, "collection": batch.collection,
        "version": batch.masterfile_version, "product": batch.masterfile_version.product,
        "lines": [{**ln, "state_text": STATE_TEXT.get(ln.get("state", ""), ln.get("state", ""))}
                  for ln in snapshot.get("lines", [])],
        "results": result_rows(cert), "changed": snapshot.get("changed", []), "oos": oos,
        "oos_requested": site_time(oos.requested_at, site) if oos else "",
        "oos_accepted": site_time(oos.accepted_at, site) if oos and oos.accepted_at else "",
        "signature": signature, "signature_valid": valid,
        "signed": site_time(signed_at, site, with_utc=True, seconds=True),
        "decided": site_time(cert.decided_at, site),
        "checklist_hash": cert.checklist_hash,
    }
