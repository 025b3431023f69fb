"""Ledger event types of the master file and change control."""

from django.db import models

from pocare.ledger.events import event_types


@event_types
class MasterFileEvent(models.TextChoices):
    PRODUCT_CREATED = "masterfile.product_created", "Product created"
    VERSION_DRAFTED = "masterfile.version_drafted", "Master-file version drafted"
    VERSION_SUBMITTED = "masterfile.version_submitted", "Master-file version submitted for review (authored)"
    VERSION_REVIEWED = "masterfile.version_reviewed", "Master-file version reviewed"
    VERSION_RETURNED = "masterfile.version_returned", "Master-file version returned to draft"
    VERSION_APPROVED = "masterfile.version_approved", "Master-file version approved by the QP"
    VERSION_EFFECTIVE = "masterfile.version_effective", "Master-file version made effective"
    VERSION_SUPERSEDED = "masterfile.version_superseded", "Master-file version superseded"
    CHANGE_RAISED = "masterfile.change_raised", "Change request raised"
    CHANGE_SUBMITTED = "masterfile.change_submitted", "Change request submitted"
    CHANGE_RETURNED = "masterfile.change_returned", "Change request returned to draft with its version"
    CHANGE_APPROVED = "masterfile.change_approved", "Change request approved"
    CHANGE_REJECTED = "masterfile.change_rejected", "Change request rejected"
    CHANGE_IMPLEMENTED = "masterfile.change_implemented", "Change request implemented"
    DOSSIER_EXPORTED = "masterfile.dossier_exported", "Master-file dossier exported"
