"""The demo's quality system, through the real services: the default escalation rules (critical →
Control Site QA and the QP, 30 days; major → Control Site QA, 30 days; minor → nobody, 60 days),
every deviation of the history classified with scores plausible for its kind, the older ones
investigated, given CAPA where their class needs it, assessed and closed with QA's signature, the
recent ones left open — and one older one left open past its due date, so the overdue view has
something to show. Idempotent: what is classified or closed is left as it is."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from pocare.accounts.models import User
from pocare.accounts.roles import Role
from pocare.ledger.signing import SigningCredentials
from pocare.quality import services
from pocare.quality.models import (
    CapaKind,
    Deviation,
    DeviationClass,
    DeviationStatus,
    EscalationRule,
    Impact,
)

#: Deviations opened longer ago than this are investigated and closed; newer ones stay open.
CLOSE_AFTER = dt.timedelta(days=45)
#: Closures sign twice (impact, closure); keep the demo quick with Argon2.
MAX_CLOSED = 60  # the history has ~55 to close: ~110 signatures

DEFAULT_RULES = [
    (DeviationClass.CRITICAL, [Role.CONTROL_QA.value, Role.QP.value], 30),
    (DeviationClass.MAJOR, [Role.CONTROL_QA.value], 30),
    (DeviationClass.MINOR, [], 60),
]

#: (words in the title, severity, occurrence, detectability, rationale, root-cause category, root cause, CAPA)
_PROFILES: list[tuple[str, int, int, int, str, str, str, str]] = [
    ("sterility", 5, 1, 2, "Microbial growth in the final product: the patient could be harmed; caught by release "
     "sterility testing.", "environment", "Breach of aseptic technique during the sampling of the final bag "
     "(gloved-hand contact recorded in the environmental monitoring).", "Re-train the site's operators in aseptic "
     "sampling; add a settle plate at the sampling position."),
    ("coi mismatch", 5, 1, 1, "Chain-of-identity mismatch: an identity mix-up could harm the patient; the scan "
     "blocked the hand-off.", "people", "Label of the previous patient's shipper left on the bench and scanned.",
     "Line clearance before every hand-off; one shipper on the bench at a time."),
    ("din mismatch", 5, 1, 1, "DIN mismatch at receipt: identity of the starting material in doubt; the scan "
     "blocked the hand-off.", "people", "Collection label printed twice at the apheresis unit; the spare was used.",
     "Collection labels printed one at a time by the apheresis unit's system."),
    ("car+", 4, 2, 2, "Transduction below the release limit: a critical quality attribute (dose); caught by QC "
     "before release.", "material", "Lower functional titre of the vector lot near its expiry.",
     "Use vector lots within 6 months of their titre test; add a titre check at receipt."),
    ("cd3+", 3, 3, 2, "Low T-cell content of the apheresis: the process may not reach its dose; caught at receipt.",
     "material", "Patient's lymphopenia after bridging therapy.",
     "Ask the treating centre for the CD3 count before apheresis is scheduled."),
    ("purity", 3, 3, 2, "CD4/CD8 purity below range after selection: could affect the product's composition; "
     "caught in process.", "machine", "Column loaded above its capacity (high white-cell count).",
     "Split the load above 2 × 10¹⁰ white cells as the device manual allows."),
    ("culture temperature", 3, 2, 2, "Culture temperature out of range: could affect expansion and phenotype; "
     "caught by the device alarm.", "machine", "Incubator door seal worn.",
     "Replace the seal; add the seal to the quarterly maintenance."),
    ("viability", 3, 2, 2, "Viability below range in process: could lead to a product below specification; "
     "caught by the in-process control.", "method", "Delay between sampling and counting.",
     "Count within 30 minutes of sampling; time of sampling recorded."),
    ("viable cells", 2, 3, 1, "Low viable-cell count at the day-5 control: expansion slower than usual, product "
     "still expected to meet its dose.", "material", "Patient-related slow expansion.", ""),
    ("fold expansion", 2, 3, 1, "Fold expansion below target at the harvest decision: harvest day moved, dose "
     "expected to be met.", "material", "Patient-related slow expansion.", ""),
    ("shipper temperature", 2, 2, 2, "Shipper arrived slightly warm: apheresis within its stability; caught at "
     "receipt.", "environment", "Shipper left in a sunny loading bay.", ""),
    ("washes", 2, 1, 2, "Fewer washes than specified: residual vector could be higher; caught by the step review.",
     "people", "Operator stopped the wash programme early.", ""),
    ("freezing", 3, 1, 2, "Freezing run ended outside its temperature: post-thaw viability could be lower.",
     "machine", "Controlled-rate freezer probe out of position.", ""),
]
_DEFAULT_PROFILE = (2, 2, 2, "Deviation from the master file without expected effect on quality.", "method",
                    "Procedure not followed as written.", "")


def _profile(deviation: Deviation) -> tuple[int, int, int, str, str, str, str]:
    title = deviation.title.lower()
    for words, s, o, d, rationale, category, cause, capa in _PROFILES:
        if words in title:
            return s, o, d, rationale, category, cause, capa
    if deviation.kind == "temperature":
        return 3, 2, 2, "Temperature excursion in transport: product stability in doubt.", "environment", \
            "Shipper exposed to heat in transit.", "Shippers qualified for summer profile."
    return _DEFAULT_PROFILE


def _user(username: str) -> User | None:
    return User.objects.filter(username=username).first()


def load(*, password: str) -> None:
    """Rules, classifications, investigations and signed closures of the demo (a few seconds)."""
    qa, qa2 = _user("qa"), _user("qa2")
    if qa is None:
        return
    if not EscalationRule.objects.exists():
        for klass, roles, days in DEFAULT_RULES:
            services.escalation_rule_set(actor=qa, deviation_class=klass, notify_roles=roles,
                                         investigation_days=days, reason="Demo: the network's escalation rules")
    now = timezone.now()
    open_rows = list(Deviation.objects.filter(status=DeviationStatus.OPEN).select_related("site")
                     .order_by("opened_at", "pk"))
    old = [d for d in open_rows if d.opened_at < now - CLOSE_AFTER]
    # The youngest of the old major ones stays open past its due date: the overdue example.
    overdue = next((d for d in reversed(old) if _profile(d)[0] in (3, 4)), old[-1] if old else None)
    to_close = [d for d in old if d is not overdue][:MAX_CLOSED]
    closing = {d.pk for d in to_close}
    for d in open_rows:
        manager = _user(f"manager.{d.site.code.lower()}") or qa
        s, o, det, rationale, category, cause, capa = _profile(d)
        if not d.classification:
            services.deviation_classify(actor=manager, deviation=d, severity=s, occurrence=o, detectability=det,
                                        rationale=rationale, notify=d.pk not in closing)
        if d.pk not in closing:
            continue
        signer = qa if d.pk % 2 else (qa2 or qa)
        if d.investigation is None:
            services.investigation_record(
                actor=manager, deviation=d, root_cause=cause, root_cause_category=category,
                findings=f"Batch record, device data and the people involved reviewed. {cause}",
                reason="Investigation completed")
        if d.classification in (DeviationClass.CRITICAL, DeviationClass.MAJOR) and not d.capa_actions.exists():
            action = services.capa_action_add(
                actor=manager, deviation=d, kind=CapaKind.CORRECTIVE if s >= 4 else CapaKind.PREVENTIVE,
                description=capa or "Brief the site team on the deviation and its root cause.", owner=manager,
                due_on=(d.opened_at + dt.timedelta(days=21)).date(),
                effectiveness_due_on=(d.opened_at + dt.timedelta(days=90)).date())
            services.capa_action_done(actor=manager, action=action, note="Done as planned; records attached.")
            assert action.effectiveness_due_on is not None
            if action.effectiveness_due_on < now.date():
                services.capa_effectiveness_check(actor=signer, action=action, effective=True,
                                                  note="No recurrence at the site in the batches since.")
        credentials = SigningCredentials(username=signer.username, password=password)
        if not d.impact:
            negligible = s <= 3
            services.deviation_impact_assess(
                actor=signer, deviation=d, impact=Impact.NEGLIGIBLE if negligible else Impact.NOT_NEGLIGIBLE,
                rationale=("Specifications met; the investigation found no effect on the product."
                           if negligible else "A critical quality attribute or the patient's safety was "
                                              "affected; the batch was handled by the release decision."),
                credentials=credentials)
        services.deviation_close(actor=signer, deviation=d, credentials=credentials,
                                 summary=f"{rationale} Root cause: {cause} Closed after review of the "
                                         "investigation, impact and CAPA.")
