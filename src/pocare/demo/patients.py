"""The demo's patients, through the real services (docs/patients.md): the CD19 CAR-T consent document
in English, Spanish and Portuguese, issued by Control Site QA; at each active hospital, patients at
every stage before treatment — referred (one waiting past the two weeks, so the navigator's page
shows it late), eligible, not eligible, consented, consent withdrawn, lost while waiting — each by
the hospital's physician and navigator on the days a real pathway would have; and referrals linked
to the demo's therapy orders (the live ones and the latest infused one of the history), so that
booked, collected, in-manufacture, released and infused stages show, read from the orders' records.
One consented patient at each hospital has a site and slot chain booked by the navigator (the booking
service's earliest proposal), and the infused referral has its follow-up schedule, the day-7 and day-14
visits recorded and a grade-1 CRS graded; finally every linked referral's stage is synced.

Idempotent: a hospital that already has patients is left as it is. :func:`load_site` is the piece
other loaders may call for one hospital (the booking, follow-up and outcomes demos)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from pocare.accounts.models import Membership, User
from pocare.accounts.roles import Role
from pocare.custody.models import Handoff, HandoffKind, HandoffOutcome, OrderStatus, TherapyOrder
from pocare.demo.clock import demo_clock
from pocare.demo.people import demo_username
from pocare.masterfile import schema
from pocare.masterfile.models import Product
from pocare.network.models import Site, SiteKind, SiteStatus
from pocare.patients import services
from pocare.patients.booking import chain_book, chain_propose
from pocare.patients.followup import adverse_event_record, followup_schedule_create, visit_record
from pocare.patients.identity import Identity
from pocare.patients.models import AdverseEventKind, ConsentDocument, Language, Patient, Referral, Stage, VisitStatus
from pocare.release.models import Decision

CONSENT_CODE = "CD19-ICF"
#: The informed-consent document (an abridged patient version, after the ARI-0001 information sheet).
CONSENT: dict[str, tuple[str, str]] = {
    Language.EN: ("Informed consent: CAR-T cell therapy (POC-CAR19)", (
        "You are offered treatment with your own T cells, modified in a laboratory at the hospital to "
        "recognise lymphoma cells (CAR-T). Blood is collected by apheresis; the cells are made over about "
        "two weeks; you receive chemotherapy, then the cells by infusion. Side effects include cytokine "
        "release syndrome and neurological effects, which can be serious; you stay near the hospital for "
        "four weeks. You will be followed for up to fifteen years. Your data are kept under a pseudonym; "
        "your name is known only to your hospital. You may withdraw at any time without giving a reason; "
        "the cells made from your blood will then not be used.")),
    Language.ES: ("Consentimiento informado: terapia con células CAR-T (POC-CAR19)", (
        "Se le ofrece un tratamiento con sus propias células T, modificadas en un laboratorio del hospital "
        "para reconocer las células del linfoma (CAR-T). Se recogen por aféresis; las células se fabrican en "
        "unas dos semanas; recibirá quimioterapia y después las células por infusión. Los efectos adversos "
        "incluyen el síndrome de liberación de citocinas y efectos neurológicos, que pueden ser graves; "
        "permanecerá cerca del hospital cuatro semanas. Se le hará seguimiento hasta quince años. Sus datos "
        "se guardan bajo un seudónimo; solo su hospital conoce su nombre. Puede retirarse en cualquier "
        "momento sin dar razones; las células fabricadas con su sangre no se utilizarán.")),
    Language.PT: ("Consentimento informado: terapia com células CAR-T (POC-CAR19)", (
        "É-lhe proposto um tratamento com as suas próprias células T, modificadas num laboratório do "
        "hospital para reconhecer as células do linfoma (CAR-T). São colhidas por aférese; as células são "
        "fabricadas em cerca de duas semanas; receberá quimioterapia e depois as células por perfusão. Os "
        "efeitos adversos incluem a síndrome de libertação de citocinas e efeitos neurológicos, que podem "
        "ser graves; ficará perto do hospital durante quatro semanas. Será acompanhado até quinze anos. Os "
        "seus dados são guardados sob um pseudónimo; só o seu hospital conhece o seu nome. Pode desistir a "
        "qualquer momento sem dar razões; as células fabricadas com o seu sangue não serão utilizadas.")),
}
#: Issued this long before now: before every order of the history that a referral is linked to.
CONSENT_ISSUED_BEFORE = dt.timedelta(days=400)
#: Only an order of the history this recent is linked to a referral (the consent came before it).
HISTORY_LINKED_WITHIN = dt.timedelta(days=300)

_LANGUAGE_OF_COUNTRY = {"ES": Language.ES, "PT": Language.PT}
_NAMES = {
    Language.ES: ["María López García", "José Martín Sánchez", "Carmen Díaz Romero", "Antonio Ruiz Navarro",
                  "Isabel Moreno Gil", "Francisco Jiménez Torres", "Pilar Castro Ortega", "Manuel Vega Rubio",
                  "Rosa Herrera Molina", "Ángel Serrano Blanco"],
    Language.PT: ["Maria Silva Santos", "João Pereira Costa", "Ana Rodrigues Sousa", "Manuel Fernandes Lopes",
                  "Fernanda Gomes Ribeiro", "Carlos Marques Pinto", "Teresa Alves Cardoso", "Rui Teixeira Moreira",
                  "Helena Correia Nunes", "Paulo Mendes Rocha"],
    Language.EN: ["Anna Keller", "Thomas Berg", "Sarah Janssen", "Michael O'Brien", "Laura Rossi", "Peter Visser",
                  "Emma Walsh", "Daniel Fischer", "Chiara Bianchi", "Mark de Jong"],
}


@dataclass(frozen=True)
class Plan:
    """One demo patient: where the referral ends, and how many days ago each step happened."""

    ends: str
    referred: int
    assessed: int | None = None
    consented: int | None = None
    ended: int | None = None
    support: str = ""


PLANS = (
    Plan("referred", referred=3),
    Plan("referred", referred=20),  # waiting past two weeks: late on the navigator's page
    Plan("eligible", referred=12, assessed=8),
    Plan("ineligible", referred=30, assessed=26),
    Plan("consented", referred=25, assessed=20, consented=15,
         support="Hotel room for the patient and a carer for 4 weeks after infusion; train fares refunded."),
    Plan("booked", referred=18, assessed=14, consented=10),  # a site and slot chain booked through the booking
    Plan("withdrawn", referred=60, assessed=55, consented=50, ended=40),
    Plan("lost", referred=70, assessed=65, ended=45),
)


def _user(role: Role, code: str) -> User:
    return User.objects.get(username=demo_username(role, code))


def _since(*users: User) -> dt.datetime:
    """When all of ``users`` held their roles (an hour after the last joined): nothing is dated earlier."""
    joined = [Membership.objects.filter(user=u, revoked_at=None).order_by("granted_at").values_list(
        "granted_at", flat=True).first() for u in users]
    return max(j for j in joined if j is not None) + dt.timedelta(hours=1)


def consent_documents(*, now: dt.datetime | None = None) -> list[ConsentDocument]:
    """The consent document in each language, version 1 (issued once)."""
    now = now or timezone.now()
    product = Product.objects.get(code="CD19-CART")
    found = list(ConsentDocument.objects.filter(code=CONSENT_CODE))
    if found:
        return found
    qa = _user(Role.CONTROL_QA, "CTRL")
    out = []
    with demo_clock(max(now - CONSENT_ISSUED_BEFORE, _since(qa))):
        for language, (title, body) in CONSENT.items():
            out.append(services.consent_document_issue(
                actor=qa, product=product, code=CONSENT_CODE, language=language, title=title, body=body,
                reason="Approved by the ethics committee and the competent authority"))
    return out


def _refer(site: Site, language: str, name: str, n: int, *, at: dt.datetime, weight: str = "72.0") -> Referral:
    physician = _user(Role.PHYSICIAN, site.code)
    with demo_clock(at):
        return services.patient_refer(
            actor=physician, treating_site=site, product=Product.objects.get(code="CD19-CART"),
            identity=Identity(name=name, birth_date=f"{1950 + (n * 7) % 25}-{1 + n % 12:02d}-{1 + (n * 3) % 28:02d}",
                              contact=f"+00 600 000 {n:03d}", address=f"{10 + n} Demo Street, {site.name}"),
            indication="Relapsed/refractory diffuse large B-cell lymphoma after two lines",
            weight_kg=weight, language=language, region=f"{site.code}-R{1 + n % 4}", travel_minutes=20 + (n * 17) % 160,
            deprivation_quintile=1 + n % 5, reason="Referred by the lymphoma board")


def _assess(referral: Referral, *, at: dt.datetime, eligible: bool = True) -> None:
    version = services.eligibility_version(referral)
    criteria = schema.eligibility_criteria(version.content) if version else []
    answers = {c["id"]: eligible or c["id"] != "no-cns" for c in criteria}
    with demo_clock(at):
        services.eligibility_assess(actor=_user(Role.PHYSICIAN, referral.patient.treating_site.code), referral=referral,
                                    answers=answers, reason="Eligibility checklist reviewed in clinic"
                                    if eligible else "Active CNS lymphoma on MRI")


def _consent(referral: Referral, *, at: dt.datetime) -> None:
    language = referral.patient.language
    with demo_clock(at):
        document = services.consent_document_in_force(code=CONSENT_CODE, language=language)
        assert document is not None, "the demo's consent documents are issued first"
        services.consent_sign(actor=_user(Role.PHYSICIAN, referral.patient.treating_site.code), referral=referral,
                              document=document, signed_at=timezone.now(), reason="Signed in clinic after counselling")


def _book(referral: Referral, *, at: dt.datetime) -> None:
    """The navigator books the earliest proposed site and slot chain (apheresis, manufacturing,
    infusion), as on the booking page; nothing when no chain is feasible (no slots or units)."""
    navigator = _user(Role.NAVIGATOR, referral.patient.treating_site.code)
    with demo_clock(at):
        proposals = chain_propose(user=navigator, referral=referral)
        if proposals:
            chain_book(actor=navigator, referral=referral, proposal=proposals[0],
                       reason="Chain agreed with the patient by phone")


#: The follow-up of an infused demo patient: visits recorded this many days after the infusion, and a
#: grade-1 CRS (fever 38.6 °C, no hypotension, no oxygen) with its onset on day 2.
VISITS_RECORDED = (7, 14)
CRS_ONSET_DAY = 2
CRS_INPUTS = {"temperature_c": 38.6, "hypotension": False, "oxygen_device": "none"}


def _follow_up(referral: Referral, *, now: dt.datetime) -> None:
    """Plan an infused referral's follow-up from its infusion (day 0), record the day-7 and day-14 visits
    and the graded CRS, each on its own day (PAT-LTFU, PAT-GRADE); only what lies before ``now``."""
    infused_at = referral.infused_at
    if referral.stage != Stage.INFUSED or infused_at is None:
        return
    physician = _user(Role.PHYSICIAN, referral.patient.treating_site.code)
    with demo_clock(infused_at + dt.timedelta(hours=2)):
        visits = {v.day: v for v in followup_schedule_create(
            referral=referral, infused_at=infused_at, actor=physician,
            reason="Follow-up schedule planned after infusion")}
    onset = infused_at + dt.timedelta(days=CRS_ONSET_DAY)
    if onset < now:
        with demo_clock(onset + dt.timedelta(hours=6)):
            adverse_event_record(actor=physician, referral=referral, kind=AdverseEventKind.CRS,
                                 onset_on=onset.astimezone(referral.patient.treating_site.tz).date(),
                                 inputs=CRS_INPUTS, reason="Fever on the ward, paracetamol; no hypotension")
    for day in VISITS_RECORDED:
        visit = visits.get(day)
        done = infused_at + dt.timedelta(days=day, hours=1)
        if visit is None or visit.status != VisitStatus.PLANNED or done >= now:
            continue
        with demo_clock(done):
            visit_record(actor=physician, visit=visit, mode=visit.mode, done_at=done, alive=True,
                         reason="Seen in the CAR-T clinic")


def _orders_to_link(site: Site, now: dt.datetime) -> list[TherapyOrder]:
    """The site's live orders (not cancelled), the latest released-but-not-infused one and the latest
    infused one of the history: each a referral of its own."""
    mine = TherapyOrder.objects.filter(treating_site=site, referral__isnull=True, product__code="CD19-CART")
    live = list(mine.filter(recipient_id__startswith=f"{site.code}-PT-").exclude(status=OrderStatus.CANCELLED)
                .order_by("ordered_at"))
    recent = mine.filter(ordered_at__gte=now - HISTORY_LINKED_WITHIN).exclude(pk__in=[o.pk for o in live])
    infused_ids = Handoff.objects.filter(kind=HandoffKind.INFUSION, outcome=HandoffOutcome.COMPLETED).values("order_id")
    released = (recent.filter(batch__certification__decision=Decision.RELEASED).exclude(pk__in=infused_ids)
                .order_by("-ordered_at").first())
    infused = recent.filter(pk__in=infused_ids).order_by("-ordered_at").first()
    return [*live, *(o for o in (released, infused) if o is not None)]


def load_site(site: Site, *, now: dt.datetime | None = None) -> list[Referral]:
    """The demo patients of one hospital (none when it has patients already)."""
    now = now or timezone.now()
    if Patient.objects.filter(treating_site=site).exists():
        return []
    language = _LANGUAGE_OF_COUNTRY.get(site.country, Language.EN)
    names = iter(_NAMES[language] * 3)
    navigator = _user(Role.NAVIGATOR, site.code)
    day = dt.timedelta(days=1)
    issued = ConsentDocument.objects.filter(code=CONSENT_CODE).order_by("effective_from").first()
    earliest = max(_since(navigator, _user(Role.PHYSICIAN, site.code)),
                   issued.effective_from if issued else now)
    out = []
    for n, plan in enumerate(PLANS, start=1):
        if now - plan.referred * day < earliest:
            continue
        referral = _refer(site, language, next(names), n, at=now - plan.referred * day)
        if plan.assessed is not None:
            _assess(referral, at=now - plan.assessed * day, eligible=plan.ends != "ineligible")
        if plan.consented is not None:
            _consent(referral, at=now - plan.consented * day)
        if plan.ended is not None:
            with demo_clock(now - plan.ended * day):
                if plan.ends == "withdrawn":
                    services.consent_withdraw(actor=navigator, referral=referral,
                                              reason="The patient chose another treatment")
                else:
                    services.referral_lose(actor=navigator, referral=referral, lost_reason="progressed",
                                           reason="Rapid progression during bridging therapy")
        if plan.ends == "booked":
            _book(referral, at=now - dt.timedelta(hours=2))
        if plan.support:
            with demo_clock(now - plan.consented * day if plan.consented else now):
                services.patient_support_set(actor=navigator, patient=referral.patient, support=plan.support,
                                             reason="Arranged with the patient")
        out.append(referral)
    linkable = [o for o in _orders_to_link(site, now) if o.ordered_at - 14 * day >= earliest]
    for n, order in enumerate(linkable, start=len(PLANS) + 1):
        referral = _refer(site, language, next(names), n, at=order.ordered_at - 14 * day,
                          weight=str(order.recipient_weight_kg))
        _assess(referral, at=order.ordered_at - 10 * day)
        _consent(referral, at=order.ordered_at - 7 * day)
        with demo_clock(order.ordered_at):
            referral = services.referral_order_link(actor=navigator, referral=referral, order=order,
                                                    reason="The therapy order made for this referral")
        _follow_up(referral, now=now)
        out.append(referral)
    return out


def load(*, now: dt.datetime | None = None) -> int:
    """The consent documents and every active hospital's demo patients; the number of referrals made."""
    now = now or timezone.now()
    if not Product.objects.filter(code="CD19-CART").exists():
        return 0
    consent_documents(now=now)
    made = 0
    for site in Site.objects.filter(kind=SiteKind.HOSPITAL, status=SiteStatus.ACTIVE).order_by("code"):
        if not User.objects.filter(username=demo_username(Role.PHYSICIAN, site.code)).exists():
            continue
        made += len(load_site(site, now=now))
    services.referrals_stage_sync()  # every referral at the stage its order's records show
    return made
