"""The demo network's sites and people: a Control Site in Barcelona and six POCare sites in
European university hospitals' cities, with one named person per role per site.

Everything is created through the same services a person would use (sites through
``network.services``, people and memberships through ``accounts.services``), so the demo's audit
trail is a real one. Loading is idempotent: what exists is left as it is.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from pocare.accounts.models import User
from pocare.accounts.roles import NETWORK_ROLES, Role
from pocare.accounts.services import membership_grant, password_set, user_create
from pocare.ledger.models import AuditReview
from pocare.ledger.signing import SigningCredentials
from pocare.network.models import Site, SiteKind, SiteStatus
from pocare.network.services import site_register
from pocare.trail.services import trail_review_sign

#: Every demo person logs in with this password. Demo only: never load the demo in production.
DEMO_PASSWORD = "pocare-demo-2026"  # noqa: S105


@dataclass(frozen=True)
class DemoSite:
    code: str
    name: str
    kind: SiteKind
    facility_id: str
    city: str
    country: str
    lat: str
    lon: str
    tz: str
    people: dict[Role, str]


CONTROL = DemoSite(
    "CTRL", "POCare Control Site", SiteKind.CONTROL, "P1000", "Barcelona", "ES", "41.38879", "2.15899",
    "Europe/Madrid",
    {Role.CONTROL_QA: "Montserrat Puig", Role.QP: "Jordi Ferrer", Role.PLANNER: "Laia Soler",
     Role.INSPECTOR: "Helen Clarke"},
)

# Coordinates are the cities' (GeoNames); facility ids are fictitious ISBT 128-shaped values.
SITES = [
    DemoSite("MAD", "Madrid POCare site", SiteKind.HOSPITAL, "P1001", "Madrid", "ES", "40.41650", "-3.70256",
             "Europe/Madrid",
             {Role.SITE_MANAGER: "Lucía Navarro", Role.OPERATOR: "Pablo Ortega", Role.QC_ANALYST: "Elena Ruiz",
              Role.PHYSICIAN: "Dr. Javier Molina", Role.NAVIGATOR: "Carmen Iglesias"}),
    DemoSite("LIS", "Lisbon POCare site", SiteKind.HOSPITAL, "P1002", "Lisbon", "PT", "38.71667", "-9.13333",
             "Europe/Lisbon",
             {Role.SITE_MANAGER: "Inês Carvalho", Role.OPERATOR: "Tiago Ferreira", Role.QC_ANALYST: "Beatriz Costa",
              Role.PHYSICIAN: "Dr. Rui Almeida", Role.NAVIGATOR: "Sofia Martins"}),
    DemoSite("MUC", "Munich POCare site", SiteKind.HOSPITAL, "P1003", "Munich", "DE", "48.13743", "11.57549",
             "Europe/Berlin",
             {Role.SITE_MANAGER: "Katharina Bauer", Role.OPERATOR: "Lukas Hofmann", Role.QC_ANALYST: "Anna Schmid",
              Role.PHYSICIAN: "Dr. Matthias Weber", Role.NAVIGATOR: "Julia Wagner"}),
    DemoSite("GRO", "Groningen POCare site", SiteKind.HOSPITAL, "P1004", "Groningen", "NL", "53.21917", "6.56667",
             "Europe/Amsterdam",
             {Role.SITE_MANAGER: "Anouk de Vries", Role.OPERATOR: "Daan Bakker", Role.QC_ANALYST: "Sanne Visser",
              Role.PHYSICIAN: "Dr. Pieter Smit", Role.NAVIGATOR: "Lotte Mulder"}),
    DemoSite("MIL", "Milan POCare site", SiteKind.HOSPITAL, "P1005", "Milan", "IT", "45.46427", "9.18951",
             "Europe/Rome",
             {Role.SITE_MANAGER: "Giulia Romano", Role.OPERATOR: "Marco Colombo", Role.QC_ANALYST: "Chiara Ricci",
              Role.PHYSICIAN: "Dr. Alessandro Greco", Role.NAVIGATOR: "Francesca Bruno"}),
    DemoSite("DUB", "Dublin POCare site", SiteKind.HOSPITAL, "P1006", "Dublin", "IE", "53.33306", "-6.24889",
             "Europe/Dublin",
             {Role.SITE_MANAGER: "Aoife Byrne", Role.OPERATOR: "Cian Murphy", Role.QC_ANALYST: "Niamh Kelly",
              Role.PHYSICIAN: "Dr. Seán O'Brien", Role.NAVIGATOR: "Siobhán Walsh"}),
]

_ROLE_SLUG = {
    Role.CONTROL_QA: "qa", Role.QP: "qp", Role.PLANNER: "planner", Role.INSPECTOR: "inspector",
    Role.SITE_MANAGER: "manager", Role.OPERATOR: "operator", Role.QC_ANALYST: "qc",
    Role.PHYSICIAN: "physician", Role.NAVIGATOR: "navigator",
}


#: People beyond one per role: a second Control Site QA, so that a master file's author and
#: reviewer can be two different people (with the QP as the third signer).
EXTRA_PEOPLE = [("qa2", "Marc Vidal", Role.CONTROL_QA, CONTROL)]


def demo_username(role: Role, site_code: str) -> str:
    """``qa`` at the Control Site, ``operator.mad`` at Madrid, and so on."""
    slug = _ROLE_SLUG[role]
    return slug if role in NETWORK_ROLES else f"{slug}.{site_code.lower()}"


@dataclass(frozen=True)
class DemoLogin:
    username: str
    printed_name: str
    role: str
    site: str


def _inspector_grant(user: User, site: Site) -> None:
    membership_grant(actor=None, user=user, role=Role.INSPECTOR, site=site, reason="Demo network",
                     valid_until=timezone.now() + dt.timedelta(days=90))


def inspector_access_grant() -> None:
    """The inspectors' 90 days of read-only access from now, where they have none yet."""
    for spec in [CONTROL, *SITES]:
        if Role.INSPECTOR in spec.people:
            user = User.objects.filter(username=demo_username(Role.INSPECTOR, spec.code)).first()
            if user is not None and not user.memberships.exists():
                _inspector_grant(user, Site.objects.get(code=spec.code))


def passwords_set(*, new: str, set_before: dt.datetime) -> int:
    """Each demo person whose password was set before ``set_before`` (at the founding) sets ``new``
    themselves, through the accounts service, so that the change is in the trail and ``new`` ages
    from now. Returns how many changed."""
    people = User.objects.filter(email__endswith="@demo.pocare.invalid", password_changed_at__lt=set_before)
    for user in people.order_by("username"):
        password_set(user=user, new_password=new)
    return len(people)


def load_people(*, password: str = DEMO_PASSWORD, inspector_access: bool = True) -> list[DemoLogin]:
    """The Control Site, six POCare sites and one person per role per site (the test personas);
    the inspector's time-boxed access only with ``inspector_access`` (else
    :func:`inspector_access_grant` gives it later)."""
    logins: list[DemoLogin] = []
    for spec in [CONTROL, *SITES]:
        site = Site.objects.filter(code=spec.code).first() or site_register(
            actor=None, code=spec.code, name=spec.name, kind=spec.kind, facility_id=spec.facility_id,
            city=spec.city, country=spec.country, latitude=Decimal(spec.lat), longitude=Decimal(spec.lon),
            time_zone=spec.tz, status=SiteStatus.ACTIVE, reason="Demo network",
        )
        for role, printed_name in spec.people.items():
            username = demo_username(role, spec.code)
            user = User.objects.filter(username=username).first()
            if user is None:
                user = user_create(
                    actor=None, username=username, printed_name=printed_name,
                    email=f"{username}@demo.pocare.invalid", reason="Demo network", initial_password=password,
                )
                if role == Role.INSPECTOR:
                    if inspector_access:
                        _inspector_grant(user, site)
                else:
                    membership_grant(actor=None, user=user, role=role, site=site, reason="Demo network")
            logins.append(DemoLogin(username, user.printed_name, role.label, spec.code))
    for username, printed_name, role, spec in EXTRA_PEOPLE:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = user_create(actor=None, username=username, printed_name=printed_name,
                               email=f"{username}@demo.pocare.invalid", reason="Demo network",
                               initial_password=password)
            membership_grant(actor=None, user=user, role=role, site=Site.objects.get(code=spec.code),
                             reason="Demo network")
        logins.append(DemoLogin(username, user.printed_name, role.label, spec.code))
    if not AuditReview.objects.exists():
        qa = User.objects.get(username=demo_username(Role.CONTROL_QA, CONTROL.code))
        trail_review_sign(
            actor=qa, chain=CONTROL.code,
            comment="Demo: set-up of the Control Site reviewed; registration and roles as intended.",
            credentials=SigningCredentials(username=qa.username, password=password),
        )
    return logins
