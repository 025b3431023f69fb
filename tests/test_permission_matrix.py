"""Generated permission test: every web view and API endpoint × every role × own/other site.

Each URL pattern is found by walking the URL resolver, so a new view is tested the moment it is
added — and the test fails until the view says what permission it needs (``required_perm``) and,
when its URL takes an object, this file says how to name one object at the persona's own site
and one at another site. Expectations come from the role → permission policy
(``pocare.accounts.roles.ROLE_PERMS``); the views' enforcement is what is under test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from pocare.accounts.roles import NETWORK_ROLES, READ_ONLY_ROLES, ROLE_PERMS, Role
from pocare.demo.people import demo_username
from pocare.ledger.models import AuditReview, Event, Signature
from tests.personas import MULTI_ROLE, perms_anywhere, perms_at

pytestmark = pytest.mark.django_db

OWN, OTHER = "MAD", "LIS"
SITE_OF_PERSONA = {role: ("CTRL" if role in NETWORK_ROLES else OWN) for role in Role}


def _event(site: str) -> dict[str, Any]:
    return {"pk": Event.objects.filter(chain=site).order_by("seq").first().pk}


def _review(site: str) -> dict[str, Any]:
    review = AuditReview.objects.filter(chain=site).first()
    if review is None:
        from pocare.ledger.signing import SigningCredentials
        from pocare.trail.services import trail_review_sign
        from tests.conftest import PASSWORD

        manager = _user(f"manager.{site.lower()}")
        review = trail_review_sign(actor=manager, chain=site, comment="matrix",
                                   credentials=SigningCredentials(username=manager.username, password=PASSWORD))
    return {"pk": review.pk}


def _signature(site: str) -> dict[str, Any]:
    _review(site)
    return {"pk": Signature.objects.filter(chain=site).first().pk}


def _user(username: str) -> Any:
    from pocare.accounts.models import User

    return User.objects.get(username=username)


def _token(site: str) -> dict[str, Any]:
    from pocare.accounts.services import token_issue

    token, _ = token_issue(actor=None, user=_user(f"operator.{site.lower()}"), name="matrix", reason="matrix")
    return {"pk": token.pk}


#: How to name an object at a given site for URLs that take one.
OBJECTS: dict[str, Callable[[str], dict[str, Any]]] = {
    "trail:event": _event,
    "trail:review": _review,
    "network:site": lambda site: {"code": site},
    "accounts:person": lambda site: {"pk": _user(f"operator.{site.lower()}").pk},
    "api-event": _event,
    "api-signature": _signature,
    "api-site": lambda site: {"code": site},
    "api-user": lambda site: {"pk": _user(f"operator.{site.lower()}").pk},
    "api-token-revoke": _token,
}
FIXED_KWARGS: dict[str, dict[str, Any]] = {"trail:export": {"fmt": "csv"}}


def _contributions() -> None:
    """Each app's tests may add entries in ``tests/<app>/matrix.py`` (``OBJECTS``, ``FIXED_KWARGS``):
    a function ``site_code -> URL kwargs`` naming one object of that app at the given site."""
    import importlib
    import pkgutil

    import tests

    for info in pkgutil.iter_modules(tests.__path__):
        if info.ispkg:
            try:
                module = importlib.import_module(f"tests.{info.name}.matrix")
            except ModuleNotFoundError:
                continue
            OBJECTS.update(getattr(module, "OBJECTS", {}))
            FIXED_KWARGS.update(getattr(module, "FIXED_KWARGS", {}))


_contributions()
#: Token-only or anonymous flows tested on their own (tests/accounts).
SKIP = {"accounts:password_set", "api-schema",
        # Hospital sign-on: anonymous, per configured provider (tests/accounts/test_hospital_sign_on.py).
        "accounts:oidc_start", "accounts:oidc_callback",
        # Monitoring (tests/ops/test_monitoring.py): the status for anyone, the detail and the metrics
        # for the monitoring token, whatever the role; 503 while the test database has no anchor.
        "health", "metrics",
        # A job's page and file belong to the person who asked (and Control Site QA), not to a site's
        # roles: tests/jobs/test_files.py and each export's tests (another person, another site → 404).
        "jobs:job", "jobs:file", "api-job", "api-job-file"}
#: Objects that belong to the network rather than a site: people at the Control Site see them all.
NETWORK_OWNED = {"api-token-revoke"}


@dataclass(frozen=True)
class Route:
    name: str
    view: Any
    kwargs_for: Callable[[str], dict[str, Any]] | None

    @property
    def is_api(self) -> bool:
        return self.name.startswith("api-")

    @property
    def read_perm(self) -> Any:
        cls = getattr(self.view, "view_class", None) or getattr(self.view, "cls", None)
        return getattr(cls, "required_perm", None) if cls else getattr(self.view, "required_perm", None)

    @property
    def write_perm(self) -> Any:
        cls = getattr(self.view, "view_class", None) or getattr(self.view, "cls", None)
        return getattr(cls, "write_perm", None) if cls else getattr(self.view, "write_perm", None)

    @property
    def recorded_read(self) -> bool:
        """A POST that only records a read (an export, a print, a verification): GET never writes."""
        cls = getattr(self.view, "view_class", None) or getattr(self.view, "cls", None)
        return bool(getattr(cls, "recorded_read", False) if cls else getattr(self.view, "recorded_read", False))

    def allowed_methods(self) -> set[str]:
        cls = getattr(self.view, "view_class", None) or getattr(self.view, "cls", None)
        if cls is not None:
            return {m.upper() for m in cls.http_method_names if hasattr(cls, m)} - {"OPTIONS", "HEAD"}
        func = self.view
        while func is not None:  # require_http_methods keeps its method list in a closure
            for cell in func.__closure__ or ():
                value = cell.cell_contents
                if isinstance(value, list) and value and all(isinstance(v, str) and v.isupper() for v in value):
                    return set(value)
            func = getattr(func, "__wrapped__", None)
        return {"GET", "POST"}


def _walk(patterns: list[Any], namespace: str = "") -> Iterator[tuple[str, Any, URLPattern]]:
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
            yield from _walk(p.url_patterns, ns)
        elif isinstance(p, URLPattern) and p.name:
            yield f"{namespace}{p.name}", p.callback, p


def routes() -> list[Route]:
    found = []
    for name, view, pattern in _walk(get_resolver().url_patterns):
        if name in SKIP:
            continue
        takes_args = bool(pattern.pattern.regex.groupindex)
        if takes_args and name not in OBJECTS and name not in FIXED_KWARGS:
            raise AssertionError(f"{name}: add how to name its object to OBJECTS in {__file__}")
        kwargs_for = OBJECTS.get(name) or ((lambda _s, n=name: FIXED_KWARGS[n]) if name in FIXED_KWARGS else None)
        found.append(Route(name, view, kwargs_for))
    return found


ROUTES = routes()
PERSONAS = [demo_username(role, SITE_OF_PERSONA[role]) for role in Role]
ROLE_OF = {demo_username(role, SITE_OF_PERSONA[role]): role for role in Role}


def test_every_view_declares_its_permission():
    """P11-10g: deny by default — no view without an explicit access rule."""
    missing = [r.name for r in ROUTES if r.read_perm is None and r.name != "api-me"]
    assert not missing, f"views without required_perm: {missing}"


def _expected_read(route: Route, role: Role, where: str) -> bool:
    perm = route.read_perm
    if perm == "public":
        return True
    allowed = perm in (None, "signed_in") or perm in ROLE_PERMS[role]
    if route.name in OBJECTS and where == OTHER and role not in NETWORK_ROLES:
        return False  # another site's object does not exist for a site person
    return allowed


def _urls(route: Route, wheres: Iterable[str]) -> dict[str, str]:
    """The route's URL at each site (``""``: its list), each object made once per test — making one is most
    of a check's cost — and before anyone logs in (a multi-role persona is made at its first login, after
    the objects, as a person who joins a site that already works)."""
    out = {}
    for where in dict.fromkeys(wheres):
        out[where] = reverse(route.name, kwargs=route.kwargs_for(where or OWN) if route.kwargs_for else None)
    return out


def _ids(route: Route) -> str:
    return route.name


# One test per route: every persona (and site) inside it, every wrong answer reported together — the
# route's objects are made once, not once per persona.
READ_ROUTES = [route for route in ROUTES if "GET" in route.allowed_methods()]


@pytest.mark.parametrize("route", READ_ROUTES, ids=_ids)
def test_reads(client, login, route):
    """P11-10g A11-IAM: each role reads what its permissions allow, and only at its own site."""
    url = _urls(route, [OWN, OTHER] if route.name in OBJECTS else [OWN])
    wrong = []
    for username in PERSONAS:
        role = ROLE_OF[username]
        login(username)
        for where in url:
            status = client.get(url[where]).status_code
            if _expected_read(route, role, where):
                if status != 200:
                    wrong.append(f"{username} at {where}: {status}, expected 200")
            elif status not in (403, 404):
                wrong.append(f"{username} at {where}: {status}, expected 403 or 404")
            elif (status != 404 and where == OTHER and role not in NETWORK_ROLES
                  and _expected_read(route, role, OWN)):
                wrong.append(f"{username} at {where}: {status}; another site's objects must not even be "
                             "confirmed to exist (404)")
    assert not wrong, f"{route.name}: " + "; ".join(wrong)


def _may_write(route: Route, role: Role) -> bool:
    if route.recorded_read:  # inspectors export and verify too
        return route.read_perm in ROLE_PERMS[role]
    needed = route.write_perm or route.read_perm
    if needed in ("public", "signed_in", None):
        return True
    return needed in ROLE_PERMS[role] and role not in READ_ONLY_ROLES


#: Per route that takes a POST, the personas who may not write there.
WRITE_CASES = [
    pytest.param(route, refused, id=route.name)
    for route in ROUTES if "POST" in route.allowed_methods()
    if (refused := [username for username in PERSONAS if not _may_write(route, ROLE_OF[username])])
]


def _post_refused(client: Any, url: str, username: str, chain: str) -> str | None:
    """What is wrong when ``username`` POSTs to ``url`` (None: refused, and the ledger unchanged)."""
    before = Event.objects.count()
    status = client.post(url, {"reason": "matrix", "comment": "x", "password": "x", "chain": chain,
                               "action": "deactivate", "user": username, "name": "x"}).status_code
    if status not in (403, 404):
        return f"{status}, expected 403 or 404"
    if Event.objects.count() != before:
        return "refused, but the ledger changed"
    return None


@pytest.mark.parametrize(("route", "usernames"), WRITE_CASES)
def test_writes_are_refused_without_the_write_permission(client, login, route, usernames):
    """P11-10g: nothing is writable that should not be — refused, and the ledger is unchanged."""
    url = _urls(route, [OWN])[OWN]
    wrong = []
    for username in usernames:
        login(username)
        if problem := _post_refused(client, url, username, OWN):
            wrong.append(f"{username}: {problem}")
    assert not wrong, f"{route.name}: " + "; ".join(wrong)


@pytest.mark.parametrize("route", ROUTES, ids=_ids)
def test_anonymous_people_reach_nothing_but_the_login(client, route):
    """P11-10g: only people logged in use the system."""
    url = reverse(route.name, kwargs=route.kwargs_for(OWN) if route.kwargs_for else None)
    response = client.get(url)
    if route.read_perm == "public":
        assert response.status_code in (200, 405)
    elif route.is_api:
        assert response.status_code in (401, 403, 405)
    else:
        assert response.status_code in (302, 405) and (response.status_code == 405 or "/login/" in response.url)


# --- people with roles at two sites (issue 13) -------------------------------------------------------
#
# Each multi-role persona (tests/personas.py) reads every URL at each site where they hold a role and
# at one where they hold none (Munich): at each site the answer is the one the role held *there*
# gives — Control Site roles hold theirs everywhere. An object at a site where the permission is not
# held answers 404 whenever the permission is held somewhere else (the view is reachable, the
# object does not exist for them), so another site's object is never confirmed to exist.

NOWHERE = "MUC"


def _multi_sites(username: str) -> list[str]:
    own = [site for role, site in MULTI_ROLE[username] if role not in NETWORK_ROLES]
    return [*dict.fromkeys(own), NOWHERE]


@pytest.mark.parametrize("route", READ_ROUTES, ids=_ids)
def test_people_with_roles_at_two_sites_read_at_each_what_the_role_held_there_allows(client, login, route):
    """P11-10g A11-IAM: a person with roles at two sites reads an object at a site only with the
    permission held at that site; lists are reachable with the permission held anywhere."""
    perm = route.read_perm
    sites = {username: (_multi_sites(username) if route.name in OBJECTS else [""]) for username in MULTI_ROLE}
    url = _urls(route, [where for wheres in sites.values() for where in wheres])
    wrong = []
    for username, wheres in sites.items():
        login(username)
        for where in wheres:
            status = client.get(url[where]).status_code
            if perm in ("public", None, "signed_in"):
                expected = True
            elif where:
                expected = perm in perms_at(username, where)
            else:
                expected = perm in perms_anywhere(username)
            want = 200 if expected else (404 if perm in perms_anywhere(username) else 403)
            if status != want:
                why = " (an object where the permission is not held must not be confirmed)" if want == 404 else ""
                wrong.append(f"{username} at {where or 'the list'}: {status}, expected {want}{why}")
    assert not wrong, f"{route.name}: " + "; ".join(wrong)


MULTI_WRITE_CASES = [
    pytest.param(route, pairs, id=route.name)
    for route in ROUTES if "POST" in route.allowed_methods() and route.name in OBJECTS
    if (pairs := [(username, where) for username in MULTI_ROLE for where in _multi_sites(username)
                  if (route.write_perm or route.read_perm) in perms_anywhere(username) - perms_at(username, where)])
]


@pytest.mark.parametrize(("route", "pairs"), MULTI_WRITE_CASES)
def test_people_with_roles_at_two_sites_write_only_where_the_role_allows_it(client, login, route, pairs):
    """P11-10g: holding a write permission at one site does not let a person write at another:
    the object there answers 404 and the ledger is unchanged."""
    url = _urls(route, [where for _, where in pairs])
    wrong = []
    for username, where in pairs:
        login(username)
        if problem := _post_refused(client, url[where], username, where):
            wrong.append(f"{username} at {where}: {problem}")
    assert not wrong, f"{route.name}: " + "; ".join(wrong)
