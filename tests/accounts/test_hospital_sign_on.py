"""Hospital sign-on through a real local OpenID provider (issue 16, A11-IAM, P11-200, P11-300).

``oidc-provider-mock`` serves discovery, the authorization form, the token endpoint and its JWKS
over real HTTP on a free port; POCare exchanges codes and checks ID tokens with
mozilla-django-oidc, nothing of which is mocked. The browser's part (the provider's form) is
played with ``requests`` posting that form; tests/e2e drives it in Chromium.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from oidc_provider_mock import run_server_in_thread

from pocare.accounts import oidc, services
from pocare.accounts.events import AccountEvent
from pocare.accounts.models import ExternalIdentity, Membership, User
from pocare.ledger.models import Event, Signature
from pocare.training.models import TrainingRecord, TrainingStatus
from tests.conftest import PASSWORD
from tests.training.helpers import train

pytestmark = pytest.mark.django_db

WORKSTATION, ATTACKER = "10.20.0.15", "203.0.113.66"
SECRET_ENV = "POCARE_TEST_OIDC_SECRET"


@pytest.fixture(scope="module")
def idps() -> Iterator[dict[str, str]]:
    """Three providers on free ports: Madrid's and Lisbon's hospitals, and one whose ID tokens
    expired two minutes before they were issued (beyond POCare's 30 s leeway). Each has its own key."""
    with run_server_in_thread(require_nonce=True) as mad, run_server_in_thread(require_nonce=True) as lis, \
            run_server_in_thread(require_nonce=True, access_token_max_age=dt.timedelta(seconds=-120)) as stale:
        yield {key: f"http://localhost:{server.server_port}" for key, server in
               (("madrid", mad), ("lisbon", lis), ("stale", stale))}


@pytest.fixture
def hospitals(settings, monkeypatch, idps):  # type: ignore[no-untyped-def]
    monkeypatch.setenv(SECRET_ENV, "not-checked-by-the-mock-but-sent")
    settings.POCARE_OIDC_PROVIDERS = [
        {"key": "madrid", "name": "Hospital Universitario de Madrid", "issuer": idps["madrid"],
         "client_id": "pocare-mad", "client_secret_env": SECRET_ENV, "sites": ["MAD"]},
        {"key": "lisbon", "name": "Hospital de Lisboa", "issuer": idps["lisbon"], "client_id": "pocare-lis",
         "client_secret_env": SECRET_ENV, "sites": ["LIS"], "link_by_email": True},
        {"key": "stale", "name": "Stale Hospital", "issuer": idps["stale"], "client_id": "pocare-stale",
         "client_secret_env": SECRET_ENV, "sites": ["MAD"]},
    ]
    cache.clear()
    yield idps
    cache.clear()


def _link(username: str, key: str, subject: str, idps: dict[str, str]) -> ExternalIdentity:
    return services.identity_link(actor=None, user=User.objects.get(username=username), provider_key=key,
                                  issuer=idps[key], subject=subject, reason="hospital account confirmed")


def _to_provider(client: Client, key: str, address: str = WORKSTATION, next_url: str = "") -> str:
    start = client.post(f"/login/oidc/{key}/", {"next": next_url}, REMOTE_ADDR=address)
    assert start.status_code == 302, start.content.decode()[:500]
    return str(start["Location"])


def _at_provider(authorize_url: str, subject: str) -> str:
    """The person signs in at the provider (its form): the provider's answer, a URL back to POCare."""
    answer = requests.post(authorize_url, data={"sub": subject}, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text[:500]
    parts = urlsplit(answer.headers["Location"])
    return f"{parts.path}?{parts.query}"


def _sign_in(client: Client, key: str, subject: str, address: str = WORKSTATION):  # type: ignore[no-untyped-def]
    return client.get(_at_provider(_to_provider(client, key, address), subject), REMOTE_ADDR=address)


def _signed_in_as(client: Client) -> User | None:
    pk = client.session.get("_auth_user_id")
    return User.objects.get(pk=pk) if pk else None


def _refusals() -> list[Event]:
    return [e for e in Event.objects.filter(event_type=AccountEvent.LOGIN_FAILED).order_by("pk")
            if e.new.get("via") == "oidc"]


def test_sign_in_through_the_hospital_maps_to_the_linked_person_and_grants_no_role(client, hospitals):
    """A11-IAM: the provider's subject signs in as the one person linked to it; the provider's
    claims grant nothing (roles stay POCare's); the sign-in is in the ledger with issuer and subject."""
    operator = User.objects.get(username="operator.mad")
    _link("operator.mad", "madrid", "ana.garcia@hum.example", hospitals)
    # Whatever the hospital says about roles, POCare grants none from it.
    requests.put(f"{hospitals['madrid']}/users/ana.garcia@hum.example",
                 json={"email": "ana.garcia@hum.example", "groups": ["Control Site QA"], "roles": ["qa"]}, timeout=10)
    roles_before = Membership.objects.filter(user=operator).count()
    response = _sign_in(client, "madrid", "ana.garcia@hum.example")
    assert response.status_code == 302 and response["Location"] == "/"
    assert _signed_in_as(client) == operator
    assert client.session[oidc.SESSION_SIGN_ON] == {"provider": "madrid", "issuer": hospitals["madrid"],
                                                    "subject": "ana.garcia@hum.example"}
    assert Membership.objects.filter(user=operator).count() == roles_before
    assert client.get("/people/").status_code == 403  # an operator, whatever the provider's groups
    event = Event.objects.filter(event_type=AccountEvent.LOGGED_IN, actor=operator).latest("pk")
    assert event.new["via"] == "oidc" and event.new["provider"] == "madrid"
    assert event.new["subject"] == "ana.garcia@hum.example" and event.new["ip_address"] == WORKSTATION


def test_the_login_page_offers_one_button_per_hospital(client, hospitals):
    """A11-IAM: "Sign in with <hospital>" for each configured provider, next to the password form."""
    page = client.get("/login/").content.decode()
    for name in ("Hospital Universitario de Madrid", "Hospital de Lisboa", "Stale Hospital"):
        assert f"Sign in with {name}" in page
    assert 'action="/login/oidc/madrid/"' in page


def test_a_provider_signs_in_only_for_the_sites_it_serves(client, hospitals):
    """A11-IAM: Lisbon's provider does not open POCare to a person who holds roles only at Madrid."""
    _link("operator.mad", "lisbon", "ana@hl.example", hospitals)
    response = _sign_in(client, "lisbon", "ana@hl.example")
    assert response.status_code == 403 and "no active role at the sites" in response.content.decode()
    assert _signed_in_as(client) is None
    assert _refusals()[-1].new["detail"] == "no active role at the provider's sites"


def test_an_unknown_subject_is_refused_and_nothing_is_created(client, hospitals):
    """A11-IAM: a subject linked to nobody gets a page that says so; no account, no link, no role."""
    counts = (User.objects.count(), ExternalIdentity.objects.count(), Membership.objects.count())
    response = _sign_in(client, "madrid", "stranger@hum.example")
    assert response.status_code == 403
    assert "is not linked to a POCare person" in response.content.decode()
    assert _signed_in_as(client) is None
    assert (User.objects.count(), ExternalIdentity.objects.count(), Membership.objects.count()) == counts
    refusal = _refusals()[-1]
    assert refusal.new["detail"] == "unknown subject" and refusal.new["subject"] == "stranger@hum.example"


def test_a_deactivated_person_is_refused_although_the_hospital_says_yes(client, hospitals, people):
    """A11-IAM: POCare's deactivation holds over the provider's sign-in."""
    _link("operator.lis", "lisbon", "joao@hl.example", hospitals)
    services.user_deactivate(actor=people["qa"], user=people["operator.lis"], reason="left the hospital")
    response = _sign_in(client, "lisbon", "joao@hl.example")
    assert response.status_code == 403 and "deactivated" in response.content.decode()
    assert _signed_in_as(client) is None
    assert _refusals()[-1].new["detail"] == "account deactivated"


def test_a_revoked_link_no_longer_signs_in(client, hospitals, people):
    """A11-IAM: Control Site QA revokes a link; that provider account is then unknown."""
    identity = _link("operator.mad", "madrid", "revoked@hum.example", hospitals)
    services.identity_revoke(actor=people["qa"], identity=identity, reason="hospital account closed")
    assert _sign_in(client, "madrid", "revoked@hum.example").status_code == 403
    assert Event.objects.filter(event_type=AccountEvent.IDENTITY_REVOKED).exists()


def test_a_verified_email_links_on_first_sign_in_where_the_provider_allows_it(client, hospitals):
    """A11-IAM: Lisbon's provider is trusted to link by a verified e-mail matching exactly one person;
    the link is recorded; an unverified e-mail links nobody."""
    navigator = User.objects.get(username="navigator.lis")
    requests.put(f"{hospitals['lisbon']}/users/unverified-1",
                 json={"email": navigator.email, "email_verified": False}, timeout=10)
    assert _sign_in(client, "lisbon", "unverified-1").status_code == 403
    requests.put(f"{hospitals['lisbon']}/users/verified-1",
                 json={"email": navigator.email.upper(), "email_verified": True}, timeout=10)
    assert _sign_in(client, "lisbon", "verified-1").status_code == 302
    assert _signed_in_as(client) == navigator
    link = ExternalIdentity.objects.get(user=navigator)
    assert (link.subject, link.via, link.issuer) == ("verified-1", ExternalIdentity.Via.EMAIL, hospitals["lisbon"])
    assert any(e.new["subject"] == "verified-1" for e in Event.objects.filter(event_type=AccountEvent.IDENTITY_LINKED))
    # Madrid's provider does not link by e-mail at all.
    client.logout()
    requests.put(f"{hospitals['madrid']}/users/verified-2",
                 json={"email": User.objects.get(username="operator.mad").email, "email_verified": True}, timeout=10)
    assert _sign_in(client, "madrid", "verified-2").status_code == 403


def test_a_tampered_state_is_refused(client, hospitals):
    """A11-IAM: an answer whose state this browser did not start (a forged or swapped callback)."""
    _link("operator.mad", "madrid", "ana.garcia@hum.example", hospitals)
    back = _at_provider(_to_provider(client, "madrid"), "ana.garcia@hum.example")
    path, query = back.split("?", 1)
    params = {k: v[0] for k, v in parse_qs(query).items()}
    forged = client.get(f"{path}?{urlencode({**params, 'state': 'x' + params['state'][1:]})}", REMOTE_ADDR=WORKSTATION)
    assert forged.status_code == 400 and "(state)" in forged.content.decode()
    assert _signed_in_as(client) is None
    # The same answer in another browser (no such sign-in started there) is refused too.
    assert Client().get(back, REMOTE_ADDR=WORKSTATION).status_code == 400
    # And an answer for Madrid presented at Lisbon's address.
    assert client.get(back.replace("/madrid/", "/lisbon/"), REMOTE_ADDR=WORKSTATION).status_code == 400
    assert {e.new["detail"] for e in _refusals()} == {"state unknown or for another provider"}


def test_a_tampered_nonce_is_refused(client, hospitals):
    """A11-IAM: an ID token whose nonce is not the one this sign-in sent (a replayed token)."""
    _link("operator.mad", "madrid", "ana.garcia@hum.example", hospitals)
    authorize = _to_provider(client, "madrid")
    parts = urlsplit(authorize)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    swapped = f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode({**params, 'nonce': 'attacker-nonce'})}"
    response = client.get(_at_provider(swapped, "ana.garcia@hum.example"), REMOTE_ADDR=WORKSTATION)
    assert response.status_code == 400 and "Nonce" in response.content.decode()
    assert _signed_in_as(client) is None


def test_an_answer_is_used_once(client, hospitals):
    """A11-IAM: replaying the provider's answer after a sign-in is refused (the state is spent)."""
    _link("operator.mad", "madrid", "ana.garcia@hum.example", hospitals)
    back = _at_provider(_to_provider(client, "madrid"), "ana.garcia@hum.example")
    assert client.get(back, REMOTE_ADDR=WORKSTATION).status_code == 302
    client.logout()
    assert client.get(back, REMOTE_ADDR=WORKSTATION).status_code == 400


def test_hostile_callbacks_are_refused_with_a_clear_message_and_store_nothing(client, hospitals):
    """A11-IAM hostile input: garbage code or state, a provider error, a bare visit, an unknown provider:
    each a 4xx naming what is wrong, no session, nothing stored but the refusal's record."""
    _link("operator.mad", "madrid", "ana.garcia@hum.example", hospitals)
    back = _at_provider(_to_provider(client, "madrid"), "ana.garcia@hum.example")
    path, query = back.split("?", 1)
    params = {k: v[0] for k, v in parse_qs(query).items()}
    counts = (User.objects.count(), ExternalIdentity.objects.count())
    garbage_code = client.get(f"{path}?{urlencode({**params, 'code': 'garbage'})}", REMOTE_ADDR=WORKSTATION)
    assert garbage_code.status_code == 400 and "refused the sign-in code" in garbage_code.content.decode()
    cases = [
        ("?code=abc&state=" + "s" * 500, 400, "too long"),
        ("?code=abc&state=nothing-started", 400, "(state)"),
        ("?state=abc", 400, "no code"),
        ("?error=access_denied&state=abc", 400, "did not sign you in (access_denied)"),
        ("?error=<script>alert(1)</script>", 400, "&lt;script&gt;"),
        ("", 400, "start from the login page"),
    ]
    for query_string, status, text in cases:
        response = client.get(f"/login/oidc/madrid/callback/{query_string}", REMOTE_ADDR=WORKSTATION)
        assert response.status_code == status, query_string
        assert text in response.content.decode(), query_string
    assert client.get("/login/oidc/nowhere/callback/?code=a&state=b").status_code == 404
    assert client.post("/login/oidc/nowhere/").status_code == 404
    assert _signed_in_as(client) is None
    assert (User.objects.count(), ExternalIdentity.objects.count()) == counts
    assert len(_refusals()) == len(cases)  # the bare visit records nothing; every answer is recorded


def test_an_id_token_signed_by_another_key_is_refused(client, hospitals):
    """A11-IAM: the keys POCare trusts for Madrid are not those that signed the token (here Madrid's
    discovery as cached names Lisbon's JWKS, as after a key swap at a man in the middle)."""
    _link("operator.mad", "madrid", "ana.garcia@hum.example", hospitals)
    provider = oidc.providers()["madrid"]
    doc = dict(oidc.discover(provider))
    doc["jwks_uri"] = oidc.discover(oidc.providers()["lisbon"])["jwks_uri"]
    cache.set(f"pocare.oidc.discovery:{provider.issuer}", doc)
    response = _sign_in(client, "madrid", "ana.garcia@hum.example")
    assert response.status_code == 400 and "does not verify with" in response.content.decode()
    assert _signed_in_as(client) is None


def test_an_issuer_mismatch_is_refused(client, hospitals):
    """A11-IAM: a token issued by Madrid's provider is not Lisbon's, even when the exchange went to
    Madrid's endpoints (the mix-up attack)."""
    _link("operator.lis", "lisbon", "joao@hl.example", hospitals)
    lisbon = oidc.providers()["lisbon"]
    madrid_doc = oidc.discover(oidc.providers()["madrid"])
    lisbon_doc = dict(oidc.discover(lisbon))
    lisbon_doc.update({k: madrid_doc[k] for k in ("token_endpoint", "jwks_uri", "userinfo_endpoint")})
    cache.set(f"pocare.oidc.discovery:{lisbon.issuer}", lisbon_doc)
    back = _at_provider(_to_provider(client, "lisbon").replace(hospitals["lisbon"], hospitals["madrid"]),
                        "joao@hl.example")
    response = client.get(back, REMOTE_ADDR=WORKSTATION)
    assert response.status_code == 400 and "issued by another issuer" in response.content.decode()
    assert _refusals()[-1].new["detail"] == "id_token issuer mismatch"


def test_an_expired_id_token_is_refused(client, hospitals):
    """A11-IAM: an ID token past its exp (and the clock-skew leeway) is refused, naming why."""
    _link("operator.mad", "stale", "ana@stale.example", hospitals)
    response = _sign_in(client, "stale", "ana@stale.example")
    assert response.status_code == 400 and "has expired" in response.content.decode()
    assert _refusals()[-1].new["detail"] == "id_token expired"


def test_a_provider_that_cannot_be_reached_is_a_clear_502(client, hospitals, settings):
    """A11-IAM: no 500 when the hospital's provider is down; the password form still works."""
    settings.POCARE_OIDC_PROVIDERS = [*settings.POCARE_OIDC_PROVIDERS, {
        "key": "down", "name": "Closed Hospital", "issuer": "http://127.0.0.1:9", "client_id": "x",
        "client_secret_env": SECRET_ENV, "sites": ["MAD"]}]
    response = client.post("/login/oidc/down/", {"next": ""})
    assert response.status_code == 502 and "cannot be reached" in response.content.decode()


def test_refused_hospital_sign_ins_are_throttled_per_provider_and_address(client, hospitals, settings):
    """A11-IAM: failed sign-ins through a provider pause that provider from that address (django-axes),
    and the per-address limit over every user id counts them with refused passwords."""
    _link("operator.mad", "madrid", "ana.garcia@hum.example", hospitals)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        Client().get("/login/oidc/madrid/callback/?code=guess&state=guess", REMOTE_ADDR=ATTACKER)
    paused = _sign_in(Client(), "madrid", "ana.garcia@hum.example", address=ATTACKER)
    assert paused.status_code == 403 and "paused" in paused.content.decode()
    assert _refusals()[-1].new["detail"].startswith("throttled")
    assert _sign_in(client, "madrid", "ana.garcia@hum.example", address=WORKSTATION).status_code == 302
    # Password failures from one address count toward the same address limit.
    settings.POCARE_LOGIN_IP_FAILURE_LIMIT = 3
    spray = "198.51.100.7"
    for username in ("qc.mad", "qc.lis", "manager.lis"):
        Client().post("/login/", {"username": username, "password": "Summer2026!"}, REMOTE_ADDR=spray)
    assert _sign_in(Client(), "madrid", "ana.garcia@hum.example", address=spray).status_code == 403


def test_a_signature_after_hospital_sign_in_needs_the_pocare_password(client, hospitals):
    """P11-200 P11-300: the provider's sign-in is one way in, not a component of a signature: the
    person signs with user id and POCare password, a wrong one counts toward the lock."""
    _link("operator.mad", "madrid", "ana.garcia@hum.example", hospitals)
    record = train("operator.mad", sign=False)
    assert _sign_in(client, "madrid", "ana.garcia@hum.example").status_code == 302
    url = reverse("training:to_sign")
    assert 'name="username"' in client.get(url).content.decode()  # the first signing asks both components
    wrong = client.post(url, {"record": record.pk, "username": "operator.mad", "password": "not it"})
    assert wrong.status_code == 400
    assert User.objects.get(username="operator.mad").failed_attempts == 1
    signed = client.post(url, {"record": record.pk, "username": "operator.mad", "password": PASSWORD})
    assert signed.status_code == 302
    record.refresh_from_db()
    assert record.status == TrainingStatus.COMPLETE
    signature = Signature.objects.get(record_type="training.TrainingRecord", record_id=str(record.pk),
                                      signer__username="operator.mad")
    assert signature.event.new["both_components"] is True
    assert User.objects.get(username="operator.mad").failed_attempts == 0


def test_without_a_pocare_password_a_hospital_user_works_but_cannot_sign(client, hospitals, people):
    """P11-200: after a reset (no POCare password), the hospital's sign-in still opens POCare but no
    signature is possible until the person sets their password from the e-mailed link; the refusal is
    recorded and does not count toward the lock."""
    _link("operator.mad", "madrid", "ana.garcia@hum.example", hospitals)
    services.password_reset_issue(actor=people["qa"], user=people["operator.mad"], reason="lost password")
    record = train("operator.mad", sign=False)
    assert _sign_in(client, "madrid", "ana.garcia@hum.example").status_code == 302
    assert client.get("/").status_code == 200  # not sent to "change your password": there is none to change
    refused = client.post(reverse("training:to_sign"),
                          {"record": record.pk, "username": "operator.mad", "password": PASSWORD})
    assert refused.status_code == 400 and "no POCare signing password" in refused.content.decode()
    assert User.objects.get(username="operator.mad").failed_attempts == 0
    assert TrainingRecord.objects.get(pk=record.pk).status != TrainingStatus.COMPLETE


def test_control_site_qa_links_a_person_on_their_page_and_the_link_is_recorded(client, login, hospitals):
    """A11-IAM: the link is made by Control Site QA with a reason; a subject linked twice is refused
    naming the field; the link grants no role."""
    operator = User.objects.get(username="operator.mad")
    login("qa")
    page = client.get(f"/people/{operator.pk}/").content.decode()
    assert "Link a hospital sign-on" in page
    done = client.post(f"/people/{operator.pk}/", {"action": "link", "provider": "madrid",
                                                   "subject": "ana.garcia@hum.example", "reason": "HR record 4411"})
    assert done.status_code == 302
    link = ExternalIdentity.objects.get(user=operator)
    assert link.linked_by.username == "qa" and link.via == ExternalIdentity.Via.ADMIN
    event = Event.objects.get(event_type=AccountEvent.IDENTITY_LINKED, object_id=str(link.pk))
    assert event.reason == "HR record 4411" and event.new["subject"] == "ana.garcia@hum.example"
    other = User.objects.get(username="qc.mad")
    again = client.post(f"/people/{other.pk}/", {"action": "link", "provider": "madrid",
                                                 "subject": "ana.garcia@hum.example", "reason": "typo"})
    assert again.status_code == 400 and "already linked" in again.content.decode()
    unknown = client.post(f"/people/{other.pk}/", {"action": "link", "provider": "nowhere",
                                                   "subject": "x", "reason": "r"})
    assert unknown.status_code == 400 and "Select a valid choice" in unknown.content.decode()
    assert ExternalIdentity.objects.count() == 1


@pytest.mark.parametrize(("entry", "words"), [
    ({"client_secret": "in clear"}, "unknown field(s) client_secret"),
    ({"client_secret_env": ""}, "exactly one of client_secret_env"),
    ({"sites": []}, "sites must list"),
    ({"key": "Bad Key"}, "lower-case letters"),
    ({"issuer": "ftp://idp"}, "issuer must be an https://"),
    ({"scopes": "email"}, "must include 'openid'"),
])
def test_a_provider_configured_wrong_is_named(settings, entry, words):
    """A11-IAM: a secret in clear, or any bad field, stops the configuration with the field's name."""
    good = {"key": "h", "name": "H", "issuer": "https://idp.example", "client_id": "c",
            "client_secret_env": SECRET_ENV, "sites": ["MAD"]}
    settings.POCARE_OIDC_PROVIDERS = [{**good, **entry}]
    with pytest.raises(ImproperlyConfigured, match=words.replace("(", r"\(").replace(")", r"\)")):
        oidc.providers()


def test_the_administrator_links_a_person_from_the_command_line(client, hospitals):
    """A11-IAM: `pocare account link` for when no Control Site QA can (the first one, say); recorded."""
    call_command("account", "link", "qa", "--provider", "madrid", "--subject", "qa@hum.example",
                 "--reason", "first QA of the network", stdout=io.StringIO())
    event = Event.objects.filter(event_type=AccountEvent.IDENTITY_LINKED).latest("pk")
    assert event.actor_username == "cli:account-link" and event.reason == "first QA of the network"
    with pytest.raises(CommandError, match="--provider must be one of: madrid, lisbon, stale"):
        call_command("account", "link", "qa", "--provider", "nowhere", "--subject", "x", "--reason", "r")
    with pytest.raises(CommandError, match="already linked"):
        call_command("account", "link", "qc.mad", "--provider", "madrid", "--subject", "qa@hum.example",
                     "--reason", "r")


def test_pocare_check_names_a_provider_whose_secret_is_missing(settings, monkeypatch):
    """A11-IAM: `pocare check` fails (pocare.E016) before anyone meets the problem at sign-in."""
    from pocare.accounts.checks import sign_on_providers

    settings.POCARE_OIDC_PROVIDERS = [{"key": "h", "name": "H", "issuer": "https://idp.example", "client_id": "c",
                                       "client_secret_env": "POCARE_TEST_UNSET_SECRET", "sites": ["MAD"]}]
    monkeypatch.delenv("POCARE_TEST_UNSET_SECRET", raising=False)
    [error] = sign_on_providers()
    assert error.id == "pocare.E016" and "POCARE_TEST_UNSET_SECRET" in error.msg
    monkeypatch.setenv("POCARE_TEST_UNSET_SECRET", "s")
    assert sign_on_providers() == []


def test_deactivating_a_person_ends_the_session_their_hospital_opened(client, hospitals, people):
    """A11-IAM: access revoked per person takes effect at the next request, whichever way they signed in."""
    _link("operator.mad", "madrid", "ana.garcia@hum.example", hospitals)
    assert _sign_in(client, "madrid", "ana.garcia@hum.example").status_code == 302
    assert client.get("/").status_code == 200
    services.user_deactivate(actor=people["qa"], user=people["operator.mad"], reason="left")
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
