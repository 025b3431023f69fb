"""Ledger event types of the release app."""

from django.db import models

from pocare.ledger.events import event_types


@event_types
class ReleaseEvent(models.TextChoices):
    EXCEPTIONS_REVIEWED = "release.exceptions_reviewed", "Review by exception signed"
    QC_REVIEWED = "release.qc_reviewed", "Site QC review signed"
    CERTIFIED = "release.certified", "Batch certified by the QP"
    REJECTED = "release.rejected", "Batch rejected by the QP"
    CERTIFICATE_PRINTED = "release.certificate_printed", "Release certificate printed"
    OOS_REQUESTED = "release.oos_requested", "Out-of-specification release requested by the physician"
    OOS_EVALUATED = "release.oos_evaluated", "Out-of-specification risk evaluated by the QP"
    OOS_ACCEPTED = "release.oos_accepted", "Out-of-specification product accepted by the physician"
    OOS_NOTIFIED = "release.oos_notified", "Sponsor or authority notified of an out-of-specification release"
    BUNDLE_EXPORTED = "release.bundle_exported", "Inspector bundle exported"
