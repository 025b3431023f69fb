"""Set-up for the release tests, through the real services: a completed batch (every step done with
good values, the optional cryopreservation skipped), its QC results entered by the site's QC
analyst, the site's audit trail reviewed by its manager, and the review by exception signed."""

from __future__ import annotations

from typing import Any

from pocare.manufacturing import services
from pocare.manufacturing.models import Batch
from pocare.quality.models import Deviation
from pocare.trail.services import trail_review_sign
from tests.manufacturing import helpers as h

creds, user = h.creds, h.user


def good_result(attribute: dict[str, Any]) -> str:
    """A result meeting the attribute's acceptance criterion."""
    acc = attribute.get("acceptance") or {}
    if acc.get("equals") is not None:
        return str(acc["equals"])
    low, high = acc.get("min"), acc.get("max")
    if low is not None and high is not None:
        return str((low + high) / 2)
    if low is not None:
        return str(low * 1.2 + 1)
    return str(high / 2)


def bad_result(attribute: dict[str, Any]) -> str:
    acc = attribute.get("acceptance") or {}
    if acc.get("equals") is not None:
        return "growth" if "growth" in str(acc["equals"]) else "detected"
    if acc.get("min") is not None:
        return str(acc["min"] / 2)
    return str(acc["max"] * 3)


def finish_steps(batch: Batch) -> Batch:
    """Do every remaining step with good values; skip the optional ones (cryopreservation: fresh)."""
    while True:
        upcoming = services.next_step(batch)
        if upcoming is None:
            break
        _, step = upcoming
        if step.get("optional"):
            operator = user(f"operator.{batch.site.code.lower()}")
            services.step_skip(actor=operator, batch=batch, step_id=step["id"], reason="Fresh product: not frozen",
                               credentials=creds(operator))
        else:
            h.do_step(batch)
    batch.refresh_from_db()
    return batch


def enter_results(batch: Batch, *, skip_after_release: bool = True, bad: set[str] | frozenset[str] = frozenset(),
                  skip: set[str] | frozenset[str] = frozenset()) -> None:
    """QC results for the specification: good ones, ``bad`` out of specification, none for ``skip`` and
    (by default) none for those the master file allows after release."""
    qc = user(f"qc.{batch.site.code.lower()}")
    for a in services.specification(batch):
        if a["id"] in skip or (skip_after_release and a.get("result_after_release")):
            continue
        value = bad_result(a) if a["id"] in bad else good_result(a)
        services.qc_result_record(actor=qc, batch=batch, attribute_id=a["id"], value=value, credentials=creds(qc))


def review_trail(batch: Batch) -> Any:
    manager = user(f"manager.{batch.site.code.lower()}")
    return trail_review_sign(actor=manager, chain=batch.site.code, comment="Batch trail read; nothing unexpected.",
                             credentials=creds(manager))


def review_exceptions(batch: Batch) -> Any:
    from pocare.release.services import exceptions_review_sign

    qc = user(f"qc.{batch.site.code.lower()}")
    return exceptions_review_sign(actor=qc, batch=batch, comment="Exceptions looked at.", credentials=creds(qc))


def qc_review(batch: Batch) -> Any:
    from pocare.release.services import qc_review_sign

    qc = user(f"qc.{batch.site.code.lower()}")
    return qc_review_sign(actor=qc, batch=batch, comment="QC review done.", credentials=creds(qc))


def completed_batch(site_code: str = "MAD", **results: Any) -> Batch:
    """A completed batch with its results, its site's trail reviewed (not yet its exceptions)."""
    batch = finish_steps(h.started_batch(site_code))
    enter_results(batch, **results)
    review_trail(batch)
    return batch


def ready_batch(site_code: str = "MAD") -> Batch:
    """A completed batch through stage 1: results, trail review, review by exception, QC review."""
    batch = completed_batch(site_code)
    review_exceptions(batch)
    qc_review(batch)
    return batch


def assess_negligible(deviation: Deviation, *, by: str = "qa") -> Deviation:
    """QA assesses the deviation as of negligible impact (pocare.quality.services, signed)."""
    from pocare.quality import services as quality

    quality.deviation_impact_assess(actor=user(by), deviation=deviation, impact="negligible",
                                    rationale="No effect on the product's quality attributes.", credentials=creds(by))
    deviation.refresh_from_db()
    return deviation


def close_deviation(deviation: Deviation, *, by: str = "qa") -> Deviation:
    """Close a deviation the way the quality system does: classified (minor) and investigated by the
    site manager, impact assessed and closed by QA — all through ``pocare.quality.services``."""
    from pocare.quality import services as quality

    manager = user(f"manager.{deviation.site.code.lower()}")
    quality.deviation_classify(actor=manager, deviation=deviation, severity=1, occurrence=1, detectability=1,
                               rationale="Low risk.", notify=False)
    quality.investigation_record(actor=manager, deviation=deviation, findings="Looked into; understood.",
                                 root_cause="Handling.", root_cause_category="people", reason="investigated")
    deviation.refresh_from_db()
    if not deviation.impact:
        assess_negligible(deviation, by=by)
    quality.deviation_close(actor=user(by), deviation=deviation, summary="Investigated; no impact on the product.",
                            credentials=creds(by))
    deviation.refresh_from_db()
    return deviation
