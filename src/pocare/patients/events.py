"""Ledger event types of the patients app."""

from django.db import models

from pocare.ledger.events import event_types


@event_types
class PatientEvent(models.TextChoices):
    REGISTERED = "patients.registered", "Patient registered (pseudonym assigned)"
    IDENTITY_VIEWED = "patients.identity_viewed", "Patient's identifying data viewed"
    IDENTITY_CHANGED = "patients.identity_changed", "Patient's identifying data changed"
    IDENTITY_ERASED = "patients.identity_erased", "Patient's identifying data erased on request (GDPR Art. 17)"
    KEYS_ROTATED = "patients.keys_rotated", "Key sealing patients' identifying data rotated"
    KEYS_RETIRED = "patients.keys_retired", "Older keys of patients' identifying data retired"
    REFERRED = "patients.referred", "Patient referred"
    ELIGIBILITY_ASSESSED = "patients.eligibility_assessed", "Eligibility assessed"
    CONSENT_DOCUMENT_ISSUED = "patients.consent_document_issued", "Consent document version issued"
    CONSENT_SIGNED = "patients.consent_signed", "Consent signed"
    CONSENT_WITHDRAWN = "patients.consent_withdrawn", "Consent withdrawn"
    SLOTS_OPENED = "patients.slots_opened", "Apheresis or infusion slots opened"
    BOOKED = "patients.booked", "Slot chain booked"
    REBOOKED = "patients.rebooked", "Slot chain moved"
    BOOKING_CANCELLED = "patients.booking_cancelled", "Slot chain cancelled"
    STAGE_CHANGED = "patients.stage_changed", "Pathway stage changed"
    LOST = "patients.lost", "Patient lost to the pathway"
    VISITS_PLANNED = "patients.visits_planned", "Follow-up visits planned from the schedule"
    SUPPORT_NOTED = "patients.support_noted", "Travel and accommodation support noted"
    VISIT_RECORDED = "patients.visit_recorded", "Follow-up visit recorded"
    VISIT_MISSED = "patients.visit_missed", "Follow-up visit missed"
    VISITS_CLOSED = "patients.visits_closed", "Follow-up closed: the patient died"
    VISITS_REOPENED = "patients.visits_reopened", "Follow-up planned again: a death recorded in error"
    VISIT_CORRECTED = "patients.visit_corrected", "Follow-up visit corrected"
    ADVERSE_EVENT_RECORDED = "patients.adverse_event_recorded", "Adverse event recorded (graded)"
    ADVERSE_EVENT_CORRECTED = "patients.adverse_event_corrected", "Adverse event corrected (graded again)"
    VISIT_REMINDED = "patients.visit_reminded", "Follow-up visit reminded (due soon or overdue)"
    FHIR_IMPORTED = "patients.fhir_imported", "FHIR ServiceRequest imported"
