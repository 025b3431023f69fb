"""Content-leak test: no page, fragment, form, list or API list shows another site's identifiers.

The permission matrix (tests/test_permission_matrix.py) sees status codes only; a page that answers
200 may still list what the person may not see — another site's batches in a list, every site's
change requests in a form's choices. Here each persona (the single-role people at Madrid and the
people with roles at two sites, tests/personas.py) renders every GET URL of the project, found by
walking the URL resolver as the matrix does: at Madrid, Lisbon and Munich for URLs that take an
object, with ``?site=``/``?chain=`` pointing at another site for lists, and once more as an HTMX
fragment where the view answers one. Each body is searched for the identifiers of objects the
persona may not see: batch references, DINs, COIs, patient (recipient) identifiers, patients'
pseudonyms, deviation and change-request references, collected from the database up front with the
sites and permissions under which each may be shown (:func:`_identifiers`); and every patient's name,
birth date, contact and address, which no GET shows to anyone (PAT-PRIVACY; the Control Site's QA and
QP walk for those). Any hit fails, naming the URL, the persona and the identifier; all hits of a
persona are collected before failing.

The world (the demo without history, plus one object of every kind at each of the three sites
and an order made at Lisbon for a patient treated at Madrid) is built once for the module inside
a transaction that is rolled back at the end, and each test runs in a savepoint of it.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import transaction
from django.urls import reverse

from pocare.accounts.roles import Perm
from tests.conftest import PASSWORD
from tests.personas import MULTI_ROLE, perms_at
from tests.test_permission_matrix import OBJECTS, ROUTES

pytestmark = pytest.mark.django_db

#: Sites at which URLs that take an object are rendered: the personas' own and one nobody holds.
SITES = ("MAD", "LIS", "MUC")
CONTROL = "CTRL"
SINGLE_ROLE = ["manager.mad", "operator.mad", "qc.mad", "physician.mad", "navigator.mad"]
PERSONAS = [*SINGLE_ROLE, *MULTI_ROLE]
#: Control Site people, who see every site: walked for the patients' identifying data (PAT-PRIVACY).
CONTROL_SITE = ["qa", "qp"]

#: Responses that are not text: what they contain is scoped by the same lookups as the page they
#: come from (the matrix checks that another site's object answers 404), so they are fetched for
#: the status only.
BINARY = ("application/pdf", "application/zip", "image/png")


@dataclass(frozen=True)
class Identifier:
    """An identifier of one object, and where it may be shown: to someone holding one of the
    ``grants`` permissions at that grant's site (Control Site roles hold theirs everywhere)."""

    kind: str
    value: str
    grants: frozenset[tuple[Perm, str]]

    def visible_to(self, username: str) -> bool:
        return any(perm in perms_at(username, site) for perm, site in self.grants)


def _grants(*pairs: tuple[Perm, str]) -> frozenset[tuple[Perm, str]]:
    """The grants, and each of their permissions held network-wide (a Control Site role)."""
    return frozenset({*pairs, *((perm, CONTROL) for perm, _ in pairs)})


def _identifiers() -> list[Identifier]:
    """Every identifier in the database, with the permissions and sites that may show it.

    What a page legitimately shows of an object, beside the object's own page: the batch page
    shows its order's COI, DIN and deviations; an order's page (custody) shows its batch and the
    deviations of its hand-offs and logger uploads; the release page shows the batch's
    deviations; the comparability pages list batches. An order is its manufacturing site's and
    its treating site's; so are its batch and the batch's release.
    """
    from pocare.custody.models import Collection, TherapyOrder
    from pocare.manufacturing.models import Batch
    from pocare.masterfile.models import ChangeRequest
    from pocare.masterfile.selectors import RELEASED
    from pocare.quality.models import Deviation

    out: list[Identifier] = []

    def order_grants(order: TherapyOrder) -> list[tuple[Perm, str]]:
        made, treated = order.site.code, order.treating_site.code
        return [(Perm.CUSTODY_VIEW, made), (Perm.CUSTODY_VIEW, treated), (Perm.RELEASE_VIEW, made),
                (Perm.RELEASE_VIEW, treated), (Perm.BATCH_VIEW, made), (Perm.DEVIATION_VIEW, made)]

    for b in Batch.objects.select_related("site", "order__site", "order__treating_site"):
        out.append(Identifier("batch reference", b.reference, _grants(
            *order_grants(b.order), (Perm.BATCH_VIEW, b.site.code), (Perm.DEVIATION_VIEW, b.site.code),
            (Perm.ANALYTICS_VIEW, b.site.code))))
    for o in TherapyOrder.objects.select_related("site", "treating_site"):
        grants = _grants(*order_grants(o))
        if o.coi:
            out.append(Identifier("COI", o.coi, grants))
        out.append(Identifier("patient identifier", o.recipient_id, grants))
    for c in Collection.objects.select_related("order__site", "order__treating_site", "collection_site"):
        out.append(Identifier("DIN", c.din, _grants(*order_grants(c.order), (Perm.CUSTODY_VIEW, c.collection_site.code))))
    for d in Deviation.objects.select_related("site", "order__site", "order__treating_site", "batch__site",
                                              "batch__order__treating_site"):
        # Exception: the product quality review (ANALYTICS_VIEW, held by Control Site roles only) is a
        # network document that lists every site's deviations and changes by design (Q10-PQS).
        pairs = [(Perm.DEVIATION_VIEW, d.site.code), (Perm.BATCH_VIEW, d.site.code), (Perm.ANALYTICS_VIEW, CONTROL)]
        if d.order is not None:
            pairs += [(Perm.CUSTODY_VIEW, d.order.site.code), (Perm.CUSTODY_VIEW, d.order.treating_site.code)]
        if d.batch is not None:
            pairs += [(Perm.BATCH_VIEW, d.batch.site.code), (Perm.RELEASE_VIEW, d.batch.site.code),
                      (Perm.RELEASE_VIEW, d.batch.order.treating_site.code)]
        out.append(Identifier("deviation reference", d.reference, _grants(*pairs)))
    for cr in ChangeRequest.objects.prefetch_related("sites").select_related("version"):
        version = getattr(cr, "version", None)
        if version is not None and version.status in RELEASED:
            # Exception: a released version is the law every site works under, so the change
            # request it came from is named on the version's page to whoever reads the master file.
            continue
        out.append(Identifier("change-request reference", cr.reference,
                              _grants((Perm.MASTERFILE_VIEW, CONTROL), (Perm.ANALYTICS_VIEW, CONTROL),
                                      *((Perm.MASTERFILE_VIEW, s.code) for s in cr.sites.all()))))
    out += _patient_identifiers()
    from pocare.patients.models import Referral

    # A patient's pseudonym: the treating hospital's pathway roles and the Control Site see it, and the
    # hospital's audit trail names it (the pathway's events are on the hospital's chain); once the
    # referral has its order, whoever sees the order may too (a hold names the pseudonym).
    for r in Referral.objects.select_related("patient__treating_site", "order__site", "order__treating_site"):
        treated = r.patient.treating_site.code
        pairs = [(Perm.PATIENTS_VIEW, treated), (Perm.LEDGER_VIEW, treated),
                 *(order_grants(r.order) if r.order else [])]
        out.append(Identifier("pseudonym", r.patient.pseudonym, _grants(*pairs)))
    merged: dict[str, Identifier] = {}
    for i in out:  # one value on objects of several sites (the matrix's patients are all "MATRIX")
        seen = merged.get(i.value)
        merged[i.value] = i if seen is None else Identifier(i.kind, i.value, seen.grants | i.grants)
    return list(merged.values())


#: The kinds of a patient's identifying data (PAT-PRIVACY): shown by no GET to anyone, only on the
#: treating hospital's POST "Show identifying data" (tests/patients/test_privacy.py).
IDENTITY_KINDS = ("patient's name", "patient's birth date", "patient's contact", "patient's address")


def _patient_identifiers() -> list[Identifier]:
    """Each patient's pseudonym, seen with PATIENTS_VIEW at the treating hospital (and by the Control
    Site's QA and QP) and in its audit trail; and their identifying data, which no page, fragment, list or API read shows to
    anyone (PAT-PRIVACY) — the treating hospital's people included, since a GET never shows them."""
    from pocare.patients.identity import unseal
    from pocare.patients.models import Patient

    out = []
    for p in Patient.objects.select_related("treating_site").exclude(identity=None):
        # The treating hospital's audit trail names the pseudonym (a registration, a referral): its
        # readers see it there. The pseudonym identifies nobody; it is what the network knows.
        out.append(Identifier("pseudonym", p.pseudonym, _grants((Perm.PATIENTS_VIEW, p.treating_site.code),
                                                                (Perm.LEDGER_VIEW, p.treating_site.code))))
        who = unseal(p.identity)
        for kind, value in zip(IDENTITY_KINDS, (who.name, who.birth_date, who.contact, who.address), strict=True):
            if value:
                out.append(Identifier(kind, value, frozenset()))
    return out


def _order_made_elsewhere(made: str, treated: str) -> None:
    """An accepted order manufactured at ``made`` for a patient treated at ``treated``, with its
    collection and a batch, made through the services: ordered by the treating site's physician,
    accepted at ``made``, collected and sent at ``treated``, received and started at ``made``."""
    from pocare.custody import services as custody
    from pocare.custody.models import HandoffKind
    from tests.custody.helpers import accepted, collect, scan, user
    from tests.manufacturing.matrix import batch_start_for

    order = accepted(made, treated, recipient=f"{treated}-PT-FROM-{made}")
    collection = collect(order)
    for kind in (HandoffKind.COLLECTION, HandoffKind.DISPATCH_TO_SITE):
        scan(order, kind, collection.din_printed, collection)
    # The bag travels with a data logger, whose reading the receipt step reads (a derived parameter).
    shipment = custody.shipment_dispatch(actor=user(f"physician.{treated.lower()}"), order=order, leg="apheresis",
                                         logger_id="TL-LEAKS", reason="apheresis to the manufacturing site")
    custody.temperatures_upload(actor=user(f"operator.{made.lower()}"), shipment=shipment, source="api",
                                rows=[{"timestamp": shipment.dispatched_at.isoformat(), "temperature_c": 4.5}])
    scan(order, HandoffKind.RECEIPT_AT_SITE, collection.din_printed, collection)
    batch_start_for(order)


@dataclass(frozen=True)
class Page:
    route: str
    site: str
    url: str


@dataclass
class World:
    pages: list[Page]
    identifiers: list[Identifier]


def _pages() -> list[Page]:
    pages = []
    for route in ROUTES:
        if "GET" not in route.allowed_methods():
            continue
        if route.name in OBJECTS:
            assert route.kwargs_for is not None
            for site in SITES:
                pages.append(Page(route.name, site, reverse(route.name, kwargs=route.kwargs_for(site))))
        else:
            kwargs = route.kwargs_for("MAD") if route.kwargs_for else None
            url = reverse(route.name, kwargs=kwargs)
            pages.append(Page(route.name, "", url))
            for site in SITES[1:]:  # a list narrowed to another site by its filter
                pages.append(Page(route.name, site, f"{url}?site={site}&chain={site}"))
    return pages + _asked_pages()


def _asked_pages() -> list[Page]:
    """Pages that show records only when asked: the product quality review of the demo product over
    every year of the demo, and the diff of each site's proposed version against the effective one."""
    from pocare.masterfile.models import ChangeRequest, MasterFileVersion

    pages = [Page("analytics:review", "", reverse("analytics:review") + "?product=CD19-CART&start=2020-01-01"
                                                                          "&end=2030-12-31")]
    effective = MasterFileVersion.objects.get(product__code="CD19-CART", status="effective")
    for site in SITES:
        proposal = MasterFileVersion.objects.get(change_request=ChangeRequest.objects.get(title=f"Change for {site} only"))
        pages.append(Page("masterfile:diff", site, f"{reverse('masterfile:diff')}?a={effective.pk}&b={proposal.pk}"))
    return pages


@pytest.fixture(scope="module")
def world(django_db_setup: Any, django_db_blocker: Any) -> Iterator[World]:
    from pocare.demo import loader
    from tests.masterfile.helpers import V1_TEXT, raise_change
    from tests.personas import ensure_multi_role

    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            loader.load(password=PASSWORD, history=False)
            _order_made_elsewhere("LIS", "MAD")
            for site in SITES:  # the demo's v2 is effective: each site's change proposes going back to v1
                raise_change(actor="qa2", sites=(site,), document=V1_TEXT, title=f"Change for {site} only")
            pages = _pages()  # naming an object at a site makes one there: every kind, at every site
            for username in MULTI_ROLE:
                ensure_multi_role(username, password=PASSWORD)
            yield World(pages, _identifiers())
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


def _body(response: Any) -> str:
    if response.get("Content-Type", "").split(";")[0] in BINARY:
        return ""
    raw = b"".join(response.streaming_content) if response.streaming else response.content
    return raw.decode("utf-8", errors="replace")


def test_the_world_holds_identifiers_of_every_kind_at_every_site(world: World) -> None:
    """The leak test below can only find what exists: every kind of identifier is there at each site."""
    kinds = {i.kind for i in world.identifiers}
    assert kinds == {"batch reference", "COI", "patient identifier", "DIN", "deviation reference",
                     "change-request reference", "pseudonym", *IDENTITY_KINDS}
    for site in SITES:
        only_there = [i for i in world.identifiers if {s for _, s in i.grants} == {site, CONTROL}]
        assert {i.kind for i in only_there} >= {"batch reference", "COI", "DIN", "deviation reference",
                                                 "change-request reference", "pseudonym"}, site


def _alternation(values: set[str]) -> re.Pattern[str]:
    """One pattern finding any of ``values`` as a whole identifier (not inside a longer one)."""
    alternatives = "|".join(re.escape(v) for v in sorted(values, key=len, reverse=True)) or "(?!)"
    return re.compile(f"(?<![A-Za-z0-9])({alternatives})(?![A-Za-z0-9])")


@pytest.mark.parametrize("username", [*PERSONAS, *CONTROL_SITE])
def test_no_page_shows_identifiers_of_sites_the_persona_may_not_see(client, login, world, username):
    """P11-10g A11-IAM PAT-PRIVACY: a person sees an object of a site only with the permission held at
    that site — no page, fragment, form, list or API list shows another site's batch references, DINs,
    COIs, patient identifiers, pseudonyms, deviation or change-request references; and a patient's
    name, birth date, contact or address reach nobody by a GET: not the manufacturing roles at the
    treating hospital, not the Control Site (which walks for those only), not the API."""
    forbidden = {i.value: i for i in world.identifiers if not i.visible_to(username)}
    if username in CONTROL_SITE:  # they see the network: what they may not see is the patients' identity
        forbidden = {v: i for v, i in forbidden.items() if i.kind in IDENTITY_KINDS}
    assert forbidden, "a persona who may see everything proves nothing here"
    assert {i.kind for i in forbidden.values()} >= set(IDENTITY_KINDS)
    pattern = _alternation(forbidden)
    allowed = {i.value for i in world.identifiers if i.value not in forbidden}
    allowed_pattern = _alternation(allowed)
    seen_allowed: set[str] = set()
    login(username)
    client.raise_request_exception = False  # a 500 is collected with the leaks, not raised
    leaks: list[str] = []
    errors: list[str] = []
    rendered = 0
    started = time.monotonic()
    for page in world.pages:
        variants = [{}]
        response = client.get(page.url)
        if "HX-Request" in response.get("Vary", ""):
            variants.append({"HTTP_HX_REQUEST": "true"})
        for i, headers in enumerate(variants):
            if i:
                response = client.get(page.url, **headers)
            rendered += 1
            if response.status_code >= 500:
                errors.append(f"{page.url}: {response.status_code}")
            # Exception: the address asked for is echoed (the site switcher's return address); it
            # tells the person nothing they did not send.
            body = _body(response).replace(html.escape(page.url), "").replace(page.url, "")
            seen_allowed.update(allowed_pattern.findall(body))
            for match in set(pattern.findall(body)):
                ident = forbidden[match]
                leaks.append(f"{page.url}{' (fragment)' if i else ''} [{page.route}, {response.status_code}] "
                             f"shows {ident.kind} {ident.value}")
    print(f"{username}: {rendered} responses searched for {len(forbidden)} identifiers "
          f"in {time.monotonic() - started:.1f} s; {len(seen_allowed)} of the {len(allowed)} they may see were shown")
    assert not errors, "\n".join(errors)
    # The pages did show records: what the persona may see is there (the search is not vacuous).
    assert len(seen_allowed) >= 3, f"{username} saw only {sorted(seen_allowed)} of what they may see"
    assert not leaks, f"{username} sees {len(leaks)} identifiers of sites they may not see:\n" + "\n".join(leaks)


def test_identifying_data_never_reach_the_ledger(world: World) -> None:
    """PAT-PRIVACY: the world's patients were registered, referred, consented and booked; no ledger
    event holds their name, birth date, contact or address (the ledger is append-only, so what
    enters it could never be erased)."""
    import json

    from pocare.ledger.models import Event

    secrets = [i for i in world.identifiers if i.kind in IDENTITY_KINDS]
    assert len({i.kind for i in secrets}) == len(IDENTITY_KINDS)
    events = Event.objects.all()
    text = "\n".join(json.dumps([e.old_values, e.new_values, e.object_repr, e.reason], ensure_ascii=False) +
                     e.old_values + e.new_values for e in events)
    assert events.filter(event_type="patients.registered").count() >= 3
    assert not [i.value for i in secrets if i.value in text]
