"""Demo training: qualifications, role curricula and signed training records for every site's
people, including one qualification expiring within 30 days, one expired, a requalification, a
simulation drill, a cross-site rotation, a record still waiting for its trainee, and training
on the master-file versions (v1 everywhere, v2 only at Madrid — so v2 is effective at MAD and
not yet at LIS).

Everything goes through the services, so the demo's training has real signatures and ledger
events. Loading is idempotent: what exists is left as it is. Called by the demo loader
(``pocare.demo.loader``) after the network and the master file are loaded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils import timezone

from pocare.accounts.models import User
from pocare.accounts.roles import Role
from pocare.ledger.signing import SigningCredentials
from pocare.masterfile import schema
from pocare.masterfile.selectors import required_training_steps
from pocare.network.models import Site
from pocare.training import services
from pocare.training.models import CurriculumItem, Qualification, TrainingKind, TrainingRecord

SITES = ("MAD", "LIS", "MUC", "GRO", "MIL", "DUB")
QA, QA2 = "qa", "qa2"

#: code, name, validity in months, assessment pass mark, description
QUALIFICATIONS: list[tuple[str, str, int, Decimal | None, str]] = [
    ("gmp-basics", "GMP basics", 24, None, "Good manufacturing practice for ATMPs, data integrity, documentation."),
    ("aseptic-processing", "Aseptic processing", 12, Decimal("80"),
     "Aseptic technique, gowning and closed-system connections; media-fill participation."),
    ("prodigy-operation", "CliniMACS Prodigy operation", 12, Decimal("80"),
     "Set-up, tubing-set installation, process programs and alarms of the automated closed system."),
    ("cell-counting", "Cell counting and viability", 12, None,
     "Automated cell counting and viability by dye exclusion."),
    ("cryopreservation", "Cryopreservation", 24, None, "Formulation with DMSO, controlled-rate freezing, storage."),
    ("qc-flow-cytometry", "QC flow cytometry", 12, Decimal("85"),
     "Identity, purity and CAR expression by flow cytometry; gating to the QC method."),
]

CURRICULA: dict[Role, list[str]] = {
    Role.OPERATOR: ["gmp-basics", "aseptic-processing", "prodigy-operation", "cell-counting", "cryopreservation"],
    Role.QC_ANALYST: ["gmp-basics", "qc-flow-cytometry"],
    Role.SITE_MANAGER: ["gmp-basics"],
}


@dataclass(frozen=True)
class DemoTraining:
    """One training record of the demo: who, what, how many days ago, and its outcome."""

    trainee: str
    trainer: str
    site: str
    kind: str
    title: str
    days_ago: int
    qualification: str | None = None
    score: Decimal | None = None
    sign: bool = True  # False: left waiting for the trainee's signature


def _standard(site: str) -> list[DemoTraining]:
    s = site.lower()
    manager, operator, qc = f"manager.{s}", f"operator.{s}", f"qc.{s}"
    return [
        DemoTraining(manager, QA2, site, TrainingKind.COURSE, "GMP basics for site managers", 210, "gmp-basics"),
        # Site managers verify steps as the second person, so they hold the steps' qualifications too.
        DemoTraining(manager, QA2, site, TrainingKind.ASSESSMENT, "Aseptic processing assessment (verifier)", 130,
                     "aseptic-processing", Decimal("90")),
        DemoTraining(manager, QA2, site, TrainingKind.ASSESSMENT, "Prodigy operation assessment (verifier)", 125,
                     "prodigy-operation", Decimal("86")),
        DemoTraining(manager, QA2, site, TrainingKind.COURSE, "Cryopreservation course (verifier)", 160,
                     "cryopreservation"),
        DemoTraining(operator, manager, site, TrainingKind.COURSE, "GMP basics induction", 300, "gmp-basics"),
        DemoTraining(operator, manager, site, TrainingKind.ASSESSMENT, "Aseptic processing assessment", 100,
                     "aseptic-processing", Decimal("92")),
        DemoTraining(operator, manager, site, TrainingKind.ASSESSMENT, "Prodigy operation assessment", 90,
                     "prodigy-operation", Decimal("88")),
        DemoTraining(operator, manager, site, TrainingKind.COURSE, "Cell counting and viability", 120,
                     "cell-counting"),
        DemoTraining(operator, manager, site, TrainingKind.COURSE, "Cryopreservation course", 150,
                     "cryopreservation"),
        DemoTraining(qc, manager, site, TrainingKind.COURSE, "GMP basics induction", 250, "gmp-basics"),
        DemoTraining(qc, manager, site, TrainingKind.ASSESSMENT, "QC flow cytometry assessment", 60,
                     "qc-flow-cytometry", Decimal("90")),
    ]


def _adjust(items: list[DemoTraining]) -> list[DemoTraining]:
    """The demo's exceptions: what expires soon, what expired, what was renewed."""
    out = []
    for t in items:
        if t.trainee == "operator.muc" and t.qualification == "aseptic-processing":
            t = DemoTraining(**{**t.__dict__, "days_ago": 345})  # 12 months: expires in about 20 days
        elif t.trainee == "manager.gro" and t.qualification == "gmp-basics":
            t = DemoTraining(**{**t.__dict__, "days_ago": 718})  # 24 months: expires in about 12 days
        elif t.trainee == "qc.dub" and t.qualification == "qc-flow-cytometry":
            t = DemoTraining(**{**t.__dict__, "days_ago": 400})  # 12 months: expired about a month ago
        elif t.trainee == "operator.mad" and t.qualification == "prodigy-operation":
            t = DemoTraining(**{**t.__dict__, "days_ago": 380})  # expired, then renewed below
        out.append(t)
    return out


EXTRAS = [
    DemoTraining("operator.mad", "manager.mad", "MAD", TrainingKind.REQUALIFICATION,
                 "Prodigy operation requalification", 20, "prodigy-operation", Decimal("94")),
    DemoTraining("operator.mad", "manager.mad", "MAD", TrainingKind.DRILL,
                 "Simulation drill: tubing-set leak during expansion", 30),
    DemoTraining("operator.lis", "manager.mad", "MAD", TrainingKind.ROTATION,
                 "Cross-site rotation at Madrid: two Prodigy runs shadowed", 45),
    DemoTraining("operator.gro", "manager.gro", "GRO", TrainingKind.COURSE,
                 "Deviation reporting refresher", 2, sign=False),
]


def load(*, password: str, versions: Sequence[Any] = (), today: dt.date | None = None, people: bool = True) -> None:
    """Create whatever of the demo's training is missing.

    ``versions`` are the demo product's master-file versions, v1 then v2: every site's operator
    is trained on v1; on v2 only Madrid's, so v2 becomes effective at MAD and not yet elsewhere.
    ``people`` false: the version training only. Dates are counted back from ``today`` (default:
    the clock's), none later than the clock's date (the demo may load this before its day).
    """
    qa = User.objects.get(username=QA)
    clock_today = timezone.now().date()
    today = today or clock_today
    if people:
        codes = _qualifications(qa, versions)
        _curricula(qa, codes, password)
        items = [t for site in SITES for t in _adjust(_standard(site))] + EXTRAS
        for t in items:
            _train(t, min(today - dt.timedelta(days=t.days_ago), clock_today), password)
    for index, version in enumerate(versions):
        sites = SITES if index == 0 else ("MAD",)
        for site in sites:
            trained_on = min(_version_trained_on(version, index, today), clock_today)
            _train_version(version, site, trained_on, password)


def _version_trained_on(version: Any, index: int, today: dt.date) -> dt.date:
    """The first version is trained on when it became effective (the network's first batches were
    made under it); a later one three days ago (Madrid has just changed over)."""
    if index == 0:
        effective = version.effective_at
        return min(today - dt.timedelta(days=180), effective.date()) if effective is not None else today
    return today - dt.timedelta(days=3)


def _step_codes(versions: Sequence[Any]) -> list[str]:
    return sorted({str(s["qualification"]) for v in versions for s in schema.iter_steps(v.content or {})
                   if s.get("qualification")})


def _qualifications(qa: User, versions: Sequence[Any]) -> list[str]:
    """The demo's qualifications, plus any a master-file step names that the list lacks (so that
    every step of the demo master file can be done by a trained operator)."""
    known = {code for code, *_ in QUALIFICATIONS}
    extra = [(code, code.replace("-", " ").capitalize(), 12, None, "Named by a master-file step.")
             for code in _step_codes(versions) if code not in known]
    for code, name, months, mark, description in [*QUALIFICATIONS, *extra]:
        if not Qualification.objects.filter(code=code).exists():
            services.qualification_define(actor=qa, code=code, name=name, validity_months=months, pass_mark=mark,
                                          description=description, reason="Demo network: training programme")
    return [code for code, *_ in extra]


def _curricula(qa: User, extra_operator_codes: list[str], password: str) -> None:
    wanted = {role: [*codes, *(extra_operator_codes if role == Role.OPERATOR else [])]
              for role, codes in CURRICULA.items()}
    for role, codes in wanted.items():
        for code in codes:
            q = Qualification.objects.get(code=code)
            if not CurriculumItem.objects.filter(role=role, qualification=q).exists():
                services.curriculum_item_add(actor=qa, role=role, qualification=q,
                                             reason="Demo network: role curricula")
    for code in extra_operator_codes:  # operators are trained on what the master file asks of them
        for site in SITES:
            s = site.lower()
            _train(DemoTraining(f"operator.{s}", f"manager.{s}", site, TrainingKind.COURSE,
                                f"{Qualification.objects.get(code=code).name} course", 95, code),
                   timezone.now().date(), password)


def _creds(user: User, password: str) -> SigningCredentials:
    return SigningCredentials(username=user.username, password=password)


def _train(t: DemoTraining, trained_on: dt.date, password: str) -> None:
    trainee = User.objects.get(username=t.trainee)
    if TrainingRecord.objects.filter(trainee=trainee, title=t.title).exists():
        return
    trainer = User.objects.get(username=t.trainer)
    q = Qualification.objects.get(code=t.qualification) if t.qualification else None
    record = services.training_record(
        actor=trainer, trainee=trainee, site=Site.objects.get(code=t.site), kind=t.kind, title=t.title,
        trained_on=trained_on, qualification=q, score=t.score,
        notes="Demo training record.", credentials=_creds(trainer, password),
    )
    if t.sign:
        services.training_acknowledge(actor=trainee, record=record, credentials=_creds(trainee, password))


def _train_version(version: Any, site_code: str, trained_on: dt.date, password: str) -> None:
    """Version training at a site for its operator, and for the people who verify steps (the site
    manager) or perform the in-process QC step (the QC analyst)."""
    s = site_code.lower()
    trainer = User.objects.get(username=f"manager.{s}")
    steps = [str(x) for x in required_training_steps(version)] or list(schema.step_ids(version.content or {}))
    plural = "s" if len(steps) != 1 else ""
    for username, by in ((f"operator.{s}", trainer), (f"manager.{s}", User.objects.get(username=QA2)),
                         (f"qc.{s}", trainer)):
        trainee = User.objects.get(username=username)
        done = TrainingRecord.objects.filter(trainee=trainee, kind=TrainingKind.VERSION, masterfile_version=version)
        if done.exists():
            continue
        record = services.training_record(
            actor=by, trainee=trainee, site=Site.objects.get(code=site_code), kind=TrainingKind.VERSION,
            title=f"{version.product.code} master file v{version.number}: {len(steps)} step{plural}",
            trained_on=trained_on, masterfile_version=version, steps=steps,
            notes="Demo: read-and-understood with a walk-through at the device.", credentials=_creds(by, password),
        )
        services.training_acknowledge(actor=trainee, record=record, credentials=_creds(trainee, password))
