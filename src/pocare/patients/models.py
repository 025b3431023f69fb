"""The patient's pathway (docs/patients.md): a pseudonymous patient, their referral through its stages,
eligibility, consent in the version and language signed, the booked chain of slots (apheresis,
manufacturing, infusion), and follow-up visits with graded adverse events.

Privacy (PAT-PRIVACY): everything here but ``Patient.identity`` is pseudonymous. The identifying data
(name, date of birth, contact, address) are one encrypted value whose key is outside the database;
only the treating hospital's physician and navigator read it, each reading a ledger event, and an
erasure on request empties it while the pseudonym and all it links to stay for 30 years.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_noop


class Language(models.TextChoices):
    """The languages a patient is addressed in: every patient-facing page and document exists in each."""

    EN = "en", "English"
    ES = "es", "Español"
    PT = "pt", "Português"


class Patient(models.Model):
    """A patient, known to the network by a pseudonym; identified only at the treating hospital."""

    pseudonym = models.CharField(max_length=20, unique=True,
                                 help_text="Random, assigned at registration, never reused or changed.")
    treating_site = models.ForeignKey("network.Site", on_delete=models.PROTECT, related_name="+",
                                      help_text="The hospital that treats the patient and alone may identify them.")
    language = models.CharField(max_length=5, choices=Language.choices, default=Language.EN)
    # Fernet token (AES-128-CBC + HMAC-SHA256) of a JSON object: name, birth_date, contact, address.
    # Empty after erasure. ``identity_key`` names the key that encrypted it (keys rotate).
    identity = models.BinaryField(null=True, blank=True)
    identity_key = models.CharField(max_length=32, blank=True)
    birth_year = models.PositiveSmallIntegerField(null=True, blank=True,
                                                  help_text="Pseudonymous: eligibility by age, outcomes by age band.")
    region = models.CharField(max_length=40, blank=True,
                              help_text="Region of residence (e.g. a NUTS-3 code), for access and equity.")
    travel_minutes = models.PositiveIntegerField(null=True, blank=True,
                                                 help_text="Travel time from home to the treating hospital.")
    deprivation_quintile = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="1 (least deprived) to 5 (most deprived) of the home area.")
    support = models.TextField(blank=True, help_text="Travel and accommodation support arranged (navigator).")
    registered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    registered_at = models.DateTimeField()
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-registered_at", "-pk"]
        indexes = [models.Index(fields=["treating_site", "-registered_at"], name="patients_by_site")]

    def __str__(self) -> str:
        return self.pseudonym


class Stage(models.TextChoices):
    """Where a referral is on the pathway, in order; WITHDRAWN and LOST end it early."""

    REFERRED = "referred", gettext_noop("Referred")
    ELIGIBLE = "eligible", gettext_noop("Eligible")
    CONSENTED = "consented", gettext_noop("Consented")
    BOOKED = "booked", gettext_noop("Booked")
    COLLECTED = "collected", gettext_noop("Apheresis done")
    MANUFACTURING = "manufacturing", gettext_noop("In manufacture")
    RELEASED = "released", gettext_noop("Released")
    INFUSED = "infused", gettext_noop("Infused")
    FOLLOW_UP = "follow_up", gettext_noop("In follow-up")
    COMPLETED = "completed", gettext_noop("Follow-up completed")
    INELIGIBLE = "ineligible", gettext_noop("Not eligible")
    WITHDRAWN = "withdrawn", gettext_noop("Consent withdrawn")
    LOST = "lost", gettext_noop("Lost before treatment")


#: Stages after which nothing more happens on the pathway.
ENDED_STAGES = frozenset({Stage.COMPLETED, Stage.INELIGIBLE, Stage.WITHDRAWN, Stage.LOST})


class LostReason(models.TextChoices):
    """Why a referred patient was not treated (the outcomes' "lost while waiting, and why")."""

    DIED = "died", gettext_noop("Died before infusion")
    PROGRESSED = "progressed", gettext_noop("Disease progressed; no longer a candidate")
    UNFIT = "unfit", gettext_noop("Clinical condition; no longer fit")
    MANUFACTURING = "manufacturing", gettext_noop("Manufacturing failed; no product")
    DECLINED = "declined", gettext_noop("Declined treatment")
    OTHER = "other", gettext_noop("Other")


class ReferralSource(models.TextChoices):
    FORM = "form", gettext_noop("Referral form")
    FHIR = "fhir", gettext_noop("FHIR ServiceRequest")


class Referral(models.Model):
    """A patient referred by a physician for a product: the unit of the pathway, from referral to the
    end of follow-up. Becomes a therapy order (custody) when booked."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="referrals")
    product = models.ForeignKey("masterfile.Product", on_delete=models.PROTECT, related_name="+")
    indication = models.CharField(max_length=120)
    weight_kg = models.DecimalField(max_digits=5, decimal_places=1)
    referred_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    referred_at = models.DateTimeField()
    source = models.CharField(max_length=8, choices=ReferralSource.choices, default=ReferralSource.FORM)
    # The ServiceRequest's business identifier (system, value) when it came from a hospital system:
    # importing the same request twice finds this referral instead of making a second.
    external_system = models.CharField(max_length=200, blank=True)
    external_id = models.CharField(max_length=64, blank=True)
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.REFERRED)
    stage_changed_at = models.DateTimeField()
    lost_reason = models.CharField(max_length=16, choices=LostReason.choices, blank=True)
    order = models.OneToOneField("custody.TherapyOrder", null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="referral")
    infused_at = models.DateTimeField(null=True, blank=True, help_text="Day 0 of the follow-up schedule.")

    class Meta:
        ordering = ["-referred_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["external_system", "external_id"],
                                               condition=~Q(external_id=""), name="patients_referral_external")]
        indexes = [models.Index(fields=["stage", "-referred_at"], name="patients_referral_stage"),
                   models.Index(fields=["referred_by", "-referred_at"], name="patients_referral_by")]

    def __str__(self) -> str:
        return f"Referral {self.pk} of {self.patient}"


class EligibilityAssessment(models.Model):
    """The product's eligibility checklist answered for a referral, against the master-file version
    that held the checklist (``eligibility`` in the version's content)."""

    referral = models.ForeignKey(Referral, on_delete=models.PROTECT, related_name="eligibility")
    masterfile_version = models.ForeignKey("masterfile.MasterFileVersion", on_delete=models.PROTECT,
                                           related_name="+")
    answers = models.JSONField(help_text="Criterion id to true (met) or false (not met).")
    eligible = models.BooleanField()
    assessed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    assessed_at = models.DateTimeField()

    class Meta:
        ordering = ["-assessed_at", "-pk"]

    def __str__(self) -> str:
        return f"Eligibility of referral {self.referral_id}: {'eligible' if self.eligible else 'not eligible'}"


class ConsentDocument(models.Model):
    """One version of an informed-consent document in one language. Issued, never edited: a change is
    a new version; the text's hash is what the patient's consent binds to."""

    code = models.CharField(max_length=40, help_text="The document, across versions and languages.")
    product = models.ForeignKey("masterfile.Product", on_delete=models.PROTECT, related_name="+")
    version = models.PositiveIntegerField()
    language = models.CharField(max_length=5, choices=Language.choices)
    title = models.CharField(max_length=200)
    body = models.TextField()
    content_hash = models.CharField(max_length=64)
    effective_from = models.DateTimeField()
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["code", "-version", "language"]
        constraints = [models.UniqueConstraint(fields=["code", "version", "language"],
                                               name="patients_consent_document_version")]

    def __str__(self) -> str:
        return f"{self.code} v{self.version} ({self.language})"


class Consent(models.Model):
    """A patient's informed consent for a referral, in the document version and language signed
    (PAT-CONSENT). Withdrawal holds everything derived from the patient's material."""

    referral = models.ForeignKey(Referral, on_delete=models.PROTECT, related_name="consents")
    document = models.ForeignKey(ConsentDocument, on_delete=models.PROTECT, related_name="consents")
    signed_at = models.DateTimeField()
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawal_reason = models.TextField(blank=True)
    withdrawal_recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                               on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-signed_at", "-pk"]

    def __str__(self) -> str:
        return f"Consent to {self.document} for referral {self.referral_id}"


class SlotKind(models.TextChoices):
    APHERESIS = "apheresis", gettext_noop("Apheresis")
    INFUSION = "infusion", gettext_noop("Infusion")


class ClinicSlot(models.Model):
    """A time at a hospital's apheresis or infusion unit that one patient may be booked into."""

    site = models.ForeignKey("network.Site", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=10, choices=SlotKind.choices)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()

    class Meta:
        ordering = ["starts_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["site", "kind", "starts_at"], name="patients_slot_once"),
                       models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")),
                                              name="patients_slot_ends_after_start")]
        indexes = [models.Index(fields=["kind", "site", "starts_at"], name="patients_slot_lookup")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} slot at {self.starts_at:%Y-%m-%d %H:%M} UTC"


class BookingStatus(models.TextChoices):
    ACTIVE = "active", gettext_noop("Active")
    MOVED = "moved", gettext_noop("Moved (replaced by a later booking)")
    CANCELLED = "cancelled", gettext_noop("Cancelled")


class Booking(models.Model):
    """A referral's chain of slots, booked together or not at all: apheresis at the collection centre,
    a manufacturing unit over the process duration, and an infusion slot after QC and release. The
    manufacturing reservation is what ``batch_start`` honours for the unit."""

    referral = models.ForeignKey(Referral, on_delete=models.PROTECT, related_name="bookings")
    apheresis_slot = models.ForeignKey(ClinicSlot, on_delete=models.PROTECT, related_name="+")
    manufacturing_site = models.ForeignKey("network.Site", on_delete=models.PROTECT, related_name="+")
    unit = models.ForeignKey("network.ManufacturingUnit", on_delete=models.PROTECT, related_name="+")
    manufacturing_from = models.DateTimeField()
    manufacturing_to = models.DateTimeField()
    infusion_slot = models.ForeignKey(ClinicSlot, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=BookingStatus.choices, default=BookingStatus.ACTIVE)
    reason = models.TextField(blank=True)
    booked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    booked_at = models.DateTimeField()
    replaced_by = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="replaces")

    class Meta:
        ordering = ["-booked_at", "-pk"]
        constraints = [
            # A slot holds one patient: the database refuses the second of two navigators.
            models.UniqueConstraint(fields=["apheresis_slot"], condition=Q(status="active"),
                                    name="patients_booking_apheresis_once"),
            models.UniqueConstraint(fields=["infusion_slot"], condition=Q(status="active"),
                                    name="patients_booking_infusion_once"),
            models.UniqueConstraint(fields=["referral"], condition=Q(status="active"),
                                    name="patients_booking_one_active"),
        ]
        indexes = [models.Index(fields=["unit", "manufacturing_from"], name="patients_booking_unit")]

    def __str__(self) -> str:
        return f"Booking {self.pk} of referral {self.referral_id} ({self.status})"


class VisitStatus(models.TextChoices):
    PLANNED = "planned", gettext_noop("Planned")
    DONE = "done", gettext_noop("Done")
    MISSED = "missed", gettext_noop("Missed")
    CLOSED = "closed", gettext_noop("Closed: the patient died")


class VisitMode(models.TextChoices):
    IN_PERSON = "in_person", gettext_noop("In person")
    PHONE = "phone", gettext_noop("By phone")
    QUESTIONNAIRE = "questionnaire", gettext_noop("By questionnaire")


class Response(models.TextChoices):
    """Disease response at the visit (Lugano / iwCLL / IMWG categories collapsed to CIBMTR's)."""

    CR = "CR", gettext_noop("Complete response")
    PR = "PR", gettext_noop("Partial response")
    SD = "SD", gettext_noop("Stable disease")
    PD = "PD", gettext_noop("Progressive disease")
    NE = "NE", gettext_noop("Not evaluated")


class Persistence(models.TextChoices):
    DETECTED = "detected", gettext_noop("Detected")
    NOT_DETECTED = "not_detected", gettext_noop("Not detected")
    NOT_TESTED = "not_tested", gettext_noop("Not tested")


#: The follow-up questionnaire's questions (CIBMTR form 4100's annual follow-up, asked of the patient or of
#: the person answering for them): each is answered yes, no or unknown, with details.
QUESTIONS = ("alive", "hospital_stays", "new_cancer", "infections", "neurological")
ANSWERS = ("yes", "no", "unknown")
#: How the follow-up page names each question and answer (translated there).
QUESTION_LABELS = {"alive": gettext_noop("Alive"), "hospital_stays": gettext_noop("Hospital stays"),
                   "new_cancer": gettext_noop("New cancer or blood disorder"),
                   "infections": gettext_noop("Infections"), "neurological": gettext_noop("Neurological problems")}
ANSWER_LABELS = {"yes": gettext_noop("Yes"), "no": gettext_noop("No"), "unknown": gettext_noop("Do not know")}


class Visit(models.Model):
    """A follow-up time point after infusion (PAT-LTFU), planned from the product's master file."""

    referral = models.ForeignKey(Referral, on_delete=models.PROTECT, related_name="visits")
    label = models.CharField(max_length=40, help_text="As the schedule names it: 'Day 7', 'Month 6', 'Year 3'.")
    day = models.PositiveIntegerField(help_text="Days after infusion.")
    due_on = models.DateField()
    window_days = models.PositiveSmallIntegerField(default=0, help_text="± days the visit may be done in.")
    status = models.CharField(max_length=10, choices=VisitStatus.choices, default=VisitStatus.PLANNED)
    mode = models.CharField(max_length=16, choices=VisitMode.choices, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    alive = models.BooleanField(null=True, blank=True)
    response = models.CharField(max_length=2, choices=Response.choices, blank=True)
    new_malignancy = models.BooleanField(null=True, blank=True)
    malignancy_description = models.TextField(blank=True)
    persistence = models.CharField(max_length=16, choices=Persistence.choices, blank=True)
    answers = models.JSONField(default=dict, blank=True, help_text="A questionnaire's answers as given: per "
                               "question, yes/no/unknown and the details (QUESTIONS above).")

    class Meta:
        ordering = ["referral", "day"]
        constraints = [models.UniqueConstraint(fields=["referral", "day"], name="patients_visit_once")]
        indexes = [models.Index(fields=["status", "due_on"], name="patients_visit_due")]

    def __str__(self) -> str:
        return f"{self.label} of referral {self.referral_id}"

    def record_opens_on(self, previous_day: int) -> dt.date:
        """The first day this visit may be recorded: its window's start, widened by half the time since
        the time point before it (``previous_day``; 0 for the first). A visit nearer this time point than
        the one before belongs to this one, and one out of its window is recorded (it happened), but a
        Year 15 visit is not recorded in year 1."""
        return self.due_on - dt.timedelta(days=self.window_days + max(0, self.day - previous_day) // 2)


class AdverseEventKind(models.TextChoices):
    CRS = "crs", gettext_noop("Cytokine release syndrome")
    ICANS = "icans", gettext_noop("Immune effector cell-associated neurotoxicity syndrome")
    OTHER = "other", gettext_noop("Other adverse event")


class AdverseEvent(models.Model):
    """An adverse event after infusion. CRS and ICANS are graded from their recorded inputs by the
    ASTCT consensus (PAT-GRADE): ``grade`` and ``reasons`` are computed, never typed."""

    referral = models.ForeignKey(Referral, on_delete=models.PROTECT, related_name="adverse_events")
    visit = models.ForeignKey(Visit, null=True, blank=True, on_delete=models.PROTECT, related_name="adverse_events")
    kind = models.CharField(max_length=8, choices=AdverseEventKind.choices)
    term = models.CharField(max_length=200, blank=True)
    onset_on = models.DateField()
    inputs = models.JSONField(default=dict)
    grade = models.PositiveSmallIntegerField()
    reasons = models.JSONField(default=list)
    serious = models.BooleanField(default=False)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["-onset_on", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} grade {self.grade} (referral {self.referral_id})"


class FollowUpCorrection(models.Model):
    """A signed correction of a recorded follow-up visit or adverse event (PAT-LTFU, PAT-GRADE; ALCOA): the
    values before and after, why, who and when. The visit or event holds the values now in force; each
    correction keeps the ones it replaced, shown beside it, and its signature binds to this row."""

    visit = models.ForeignKey(Visit, null=True, blank=True, on_delete=models.PROTECT, related_name="corrections")
    adverse_event = models.ForeignKey(AdverseEvent, null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="corrections")
    old = models.JSONField(help_text="The corrected fields as they were.")
    new = models.JSONField(help_text="The same fields as corrected.")
    reason = models.TextField()
    corrected_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    corrected_at = models.DateTimeField()

    class Meta:
        ordering = ["corrected_at", "pk"]
        constraints = [models.CheckConstraint(
            condition=Q(visit__isnull=False, adverse_event__isnull=True) | Q(visit__isnull=True,
                                                                             adverse_event__isnull=False),
            name="patients_correction_of_one")]

    def __str__(self) -> str:
        what = f"visit {self.visit_id}" if self.visit_id else f"adverse event {self.adverse_event_id}"
        return f"Correction of {what}"

    def signed_content(self) -> dict[str, object]:
        return {"visit": self.visit_id, "adverse_event": self.adverse_event_id, "old": self.old, "new": self.new,
                "reason": self.reason, "corrected_by": self.corrected_by_id,
                "corrected_at": self.corrected_at.isoformat()}


class ReminderState(models.TextChoices):
    DUE = "due", gettext_noop("Due within 7 days")
    OVERDUE = "overdue", gettext_noop("Overdue")


class VisitReminder(models.Model):
    """That the treating hospital's navigators and physicians were told of a visit in a state (due soon,
    overdue): once per visit and state, however often the daily job runs (PAT-LTFU)."""

    visit = models.ForeignKey(Visit, on_delete=models.PROTECT, related_name="reminders")
    state = models.CharField(max_length=8, choices=ReminderState.choices)
    sent_at = models.DateTimeField()
    recipients = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["sent_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["visit", "state"], name="patients_visit_reminded_once")]

    def __str__(self) -> str:
        return f"Reminder of visit {self.visit_id}: {self.state}"
