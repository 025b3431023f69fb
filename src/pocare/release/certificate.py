"""The release certificate (ATMP-REL, A11-8, P11-50, ATMP-OOS): generated from the Certification and
the checklist snapshot it stores — what the QP relied on, not a re-evaluation — with the QP's
signature manifestation (printed name, date and time in UTC and in the site's zone, meaning)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pocare.ledger.canonical import content_hash
from pocare.ledger.models import Signature
from pocare.release.models import Certification

STATE_TEXT = {"pass": "pass", "fail": "FAIL", "pending": "pending after release", "not_applicable": "not applicable"}
RESULT_TEXT = {"pass": "in specification", "oos": "OUT OF SPECIFICATION",
               "pending_after_release": "pending — result after release", "missing": "MISSING"}


def certificate_context(cert: Certification) -> dict[str, Any]:
    """Everything the certificate template prints."""
    batch = cert.batch
    site = batch.site
    signature = (Signature.objects.filter(record_type="release.Certification", record_id=str(cert.pk))
                 .order_by("signed_at").first())
    valid = signature is not None and signature.record_hash == content_hash(cert.signed_content())
    snapshot = cert.checklist or {}
    results = {r["attribute"]: r for r in snapshot.get("results", [])}
    spec = (batch.masterfile_version.content or {}).get("specification", {}).get("attributes", [])
    rows = []
    for a in spec:
        r = results.get(a["id"], {})
        rows.append({"name": a.get("name", a["id"]), "method": a.get("method", ""),
                     "release_critical": bool(a.get("release_critical")), "value": r.get("value", ""),
                     "state": r.get("state", ""), "state_text": RESULT_TEXT.get(r.get("state", ""), ""),
                     "corrected": bool(r.get("corrected"))})
    signed_at = signature.signed_at if signature is not None else cert.decided_at
    return {
        "cert": cert, "batch": batch, "site": site, "order": batch.order, "collection": batch.collection,
        "version": batch.masterfile_version, "product": batch.masterfile_version.product,
        "lines": [{**ln, "state_text": STATE_TEXT.get(ln.get("state", ""), ln.get("state", ""))}
                  for ln in snapshot.get("lines", [])],
        "results": rows, "changed": snapshot.get("changed", []), "oos": cert.oos_release,
        "signature": signature, "signature_valid": valid,
        "signed_utc": signed_at.astimezone(dt.UTC), "signed_local": signed_at.astimezone(site.tz),
        "checklist_hash": cert.checklist_hash,
    }
