"""Hospital sign-on: OpenID Connect providers, one or more per hospital (docs/access.md).

mozilla-django-oidc does the protocol's work: the state, nonce and PKCE verifier kept in the
session, the code exchanged at the token endpoint, the ID token's key found in the provider's JWKS
and its signature checked. POCare adds what a network of hospitals needs and the library leaves
to its user: several providers (each read from ``POCARE_OIDC_PROVIDERS``, with its endpoints from
its discovery document), the ID token's issuer, audience, expiry and subject checked strictly,
the person found by a stored (issuer, subject) link (never by creating an account), and the
refusals named for the person and recorded in the ledger (``services.oidc_failure_record``).

The provider says who signs in; POCare decides what they may do: no claim grants a role.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
import requests
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_login_failed
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.http import HttpRequest
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import add_state_and_verifier_and_nonce_to_session, generate_code_challenge

from pocare.accounts import selectors, services
from pocare.accounts.backends import THROTTLED
from pocare.accounts.models import ExternalIdentity, User

_KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,49}$")
#: Signature algorithms an ID token may use: public-key ones only (never ``none``, never a MAC
#: keyed with the client secret, which a second client of the same provider might share).
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
#: The session key that marks a session signed in through a provider (and which one).
SESSION_SIGN_ON = "pocare.sign_on"
#: Set on the request by the backend when it refused, for the callback to record and show.
REFUSAL = "pocare_oidc_refusal"
_STATES = "oidc_states"  # mozilla-django-oidc's session dictionary: state -> nonce, verifier


@dataclass(frozen=True)
class Provider:
    """One identity provider, as configured (the secret is read when used, never stored)."""

    key: str
    name: str
    issuer: str
    client_id: str
    sites: tuple[str, ...]
    client_secret_env: str = ""
    client_secret_file: str = ""
    subject_claim: str = "sub"
    link_by_email: bool = False
    scopes: str = "openid email profile"

    def client_secret(self) -> str:
        if self.client_secret_env:
            secret = os.environ.get(self.client_secret_env, "")
            if not secret:
                raise ImproperlyConfigured(f"Provider {self.key}: environment variable {self.client_secret_env} "
                                           "is empty or unset.")
            return secret
        try:
            return Path(self.client_secret_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"Provider {self.key}: cannot read client_secret_file: {exc}") from exc


def _provider(raw: object, index: int) -> Provider:
    where = f"POCARE_OIDC_PROVIDERS[{index}]"
    if not isinstance(raw, dict):
        raise ImproperlyConfigured(f"{where} must be an object.")
    known = {"key", "name", "issuer", "client_id", "client_secret_env", "client_secret_file", "sites",
             "subject_claim", "link_by_email", "scopes"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ImproperlyConfigured(f"{where}: unknown field(s) {', '.join(unknown)}; "
                                   f"allowed: {', '.join(sorted(known))}.")
    for field in ("key", "name", "issuer", "client_id"):
        if not isinstance(raw.get(field), str) or not raw[field].strip():
            raise ImproperlyConfigured(f"{where}.{field} is required (a non-empty string).")
    key = raw["key"]
    if not _KEY.match(key):
        raise ImproperlyConfigured(f"{where}.key {key!r}: lower-case letters, digits and '-', at most 50.")
    issuer = raw["issuer"].rstrip("/")
    if not issuer.startswith(("https://", "http://")) or (settings.PRODUCTION and not issuer.startswith("https://")):
        raise ImproperlyConfigured(f"{where}.issuer must be an https:// URL (http:// outside production only).")
    if bool(raw.get("client_secret_env")) == bool(raw.get("client_secret_file")):
        raise ImproperlyConfigured(f"{where}: give exactly one of client_secret_env (an environment variable's "
                                   "name) or client_secret_file (a file's path); never the secret itself.")
    sites = raw.get("sites")
    if not isinstance(sites, list) or not sites or not all(isinstance(s, str) and s for s in sites):
        raise ImproperlyConfigured(f"{where}.sites must list the codes of the sites this provider signs in for.")
    scopes = str(raw.get("scopes", "openid email profile"))
    if "openid" not in scopes.split():
        raise ImproperlyConfigured(f"{where}.scopes must include 'openid'.")
    return Provider(key=key, name=raw["name"].strip(), issuer=issuer, client_id=raw["client_id"],
                    sites=tuple(sites), client_secret_env=str(raw.get("client_secret_env") or ""),
                    client_secret_file=str(raw.get("client_secret_file") or ""),
                    subject_claim=str(raw.get("subject_claim") or "sub"),
                    link_by_email=raw.get("link_by_email") is True, scopes=scopes)


def providers() -> dict[str, Provider]:
    """The configured providers by key, checked (``ImproperlyConfigured`` names the bad field)."""
    raw = settings.POCARE_OIDC_PROVIDERS
    if not isinstance(raw, list):
        raise ImproperlyConfigured("POCARE_OIDC_PROVIDERS must be a list of providers.")
    found: dict[str, Provider] = {}
    for index, item in enumerate(raw):
        provider = _provider(item, index)
        if provider.key in found:
            raise ImproperlyConfigured(f"POCARE_OIDC_PROVIDERS: key {provider.key!r} is used twice.")
        found[provider.key] = provider
    return found


class SignOnRefused(Exception):
    """A sign-in through a provider was refused. ``message`` is for the person, ``detail`` for
    the ledger; ``status`` is the page's (400 bad input, 403 refused person, 502 provider down)."""

    def __init__(self, message: str, *, detail: str, status: int = 400, user: User | None = None,
                 subject: str = "") -> None:
        super().__init__(message)
        self.detail, self.status, self.user, self.subject = detail, status, user, subject


def discover(provider: Provider) -> dict[str, Any]:
    """The provider's discovery document (cached), whose issuer must be the one configured."""
    cache_key = f"pocare.oidc.discovery:{provider.issuer}"
    doc: dict[str, Any] | None = cache.get(cache_key)
    if doc is not None:
        return doc
    url = f"{provider.issuer}/.well-known/openid-configuration"
    try:
        response = requests.get(url, timeout=settings.POCARE_OIDC_TIMEOUT_SECONDS)
        response.raise_for_status()
        doc = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise SignOnRefused(f"{provider.name} cannot be reached now; try again later or sign in with your "
                            "POCare password.", detail=f"discovery failed: {exc}"[:300], status=502) from exc
    if not isinstance(doc, dict) or str(doc.get("issuer", "")).rstrip("/") != provider.issuer:
        raise SignOnRefused(f"{provider.name} answered as another issuer; ask the administrator.",
                            detail=f"discovery issuer {str((doc or {}).get('issuer'))[:200]!r} is not "
                                   f"{provider.issuer!r}", status=502)
    for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(doc.get(field), str):
            raise SignOnRefused(f"{provider.name} publishes no {field}; ask the administrator.",
                                detail=f"discovery lacks {field}", status=502)
    cache.set(cache_key, doc, settings.POCARE_OIDC_DISCOVERY_SECONDS)
    return doc


def form_action_origins(configured: list[Provider]) -> list[str]:
    """The origins a login page's forms may lead to: each issuer's, and its authorization endpoint's
    when discovery is already cached (the login page never waits on a provider)."""
    origins: list[str] = []
    for provider in configured:
        urls = [provider.issuer]
        doc = cache.get(f"pocare.oidc.discovery:{provider.issuer}")
        if isinstance(doc, dict) and isinstance(doc.get("authorization_endpoint"), str):
            urls.append(doc["authorization_endpoint"])
        for url in urls:
            parts = urlsplit(url)
            origin = f"{parts.scheme}://{parts.netloc}"
            if parts.scheme in ("http", "https") and origin not in origins:
                origins.append(origin)
    return origins


def callback_url(request: HttpRequest, provider: Provider) -> str:
    """The redirect URI registered at the provider for this POCare (one per provider)."""
    return request.build_absolute_uri(reverse("accounts:oidc_callback", args=[provider.key]))


def authorization_url(request: HttpRequest, provider: Provider, next_url: str = "") -> str:
    """Start a sign-in: keep state, nonce and a PKCE verifier in the session; the provider's URL."""
    doc = discover(provider)
    state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(64)
    params = {
        "response_type": "code",
        "scope": provider.scopes,
        "client_id": provider.client_id,
        "redirect_uri": callback_url(request, provider),
        "state": state,
        "nonce": nonce,
        "code_challenge": generate_code_challenge(verifier, "S256"),
        "code_challenge_method": "S256",
    }
    add_state_and_verifier_and_nonce_to_session(request, state, params, verifier)
    request.session[_STATES][state]["provider"] = provider.key
    safe_next = next_url if url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}) else ""
    request.session[_STATES][state]["next"] = safe_next
    request.session.modified = True
    return f"{doc['authorization_endpoint']}?{urlencode(params)}"


def _throttle_key(provider: Provider) -> str:
    """The "user id" django-axes counts a provider's failures under (with the client address)."""
    return f"oidc:{provider.key}"


def callback(request: HttpRequest, provider: Provider) -> tuple[User, str]:
    """Finish a sign-in at the provider's answer: the signed-in person and where to go next.

    Raises :class:`SignOnRefused`; each refusal is recorded in the ledger and counted by the
    sign-in throttle (per provider and client address), as a refused password is.
    """
    params = request.GET
    code, state, error = params.get("code", ""), params.get("state", ""), params.get("error", "")
    states: dict[str, dict[str, Any]] = request.session.get(_STATES) or {}
    entry = states.pop(state, None) if state else None  # a state is used once (replay)
    if entry is not None:
        request.session[_STATES] = states
        request.session.save()
    try:
        if error:
            raise SignOnRefused(f"{provider.name} did not sign you in ({error[:100]}). Start again from the login "
                                "page.", detail=f"provider error: {error[:100]}")
        if not code or not state:
            missing = "code" if not code else "state"
            raise SignOnRefused(f"The provider's answer has no {missing}. Start again from the login page.",
                                detail=f"callback without {missing}")
        if len(code) > 2048 or len(state) > 200:
            raise SignOnRefused("The provider's answer is too long to be genuine. Start again from the login page.",
                                detail="callback parameter too long")
        if entry is None or entry.get("provider") != provider.key:
            raise SignOnRefused("This answer does not match a sign-in started in this browser (state). Start "
                                "again from the login page.", detail="state unknown or for another provider")
        user = authenticate(request, username=_throttle_key(provider), oidc_provider=provider,
                            nonce=entry.get("nonce"), code_verifier=entry.get("code_verifier"))
        if user is None:
            refusal: SignOnRefused | None = getattr(request, REFUSAL, None)
            if refusal is None:  # the throttle refused before the provider was asked
                detail = "throttled: too many failures from this address" if getattr(request, THROTTLED, False) \
                    else "refused"
                raise SignOnRefused("Sign-in is paused from this address after too many failures. Try again "
                                    "later or ask Control Site QA.", detail=detail, status=403)
            raise refusal
        assert isinstance(user, User)
    except SignOnRefused as exc:
        if not getattr(request, REFUSAL, None) and not getattr(request, THROTTLED, False):
            # Refused before authenticate() ran: count it toward the throttle as axes would.
            user_login_failed.send(sender=__name__, credentials={"username": _throttle_key(provider)},
                                   request=request)
        services.oidc_failure_record(request=request, provider_key=provider.key, detail=exc.detail,
                                     user=exc.user, subject=exc.subject)
        raise
    claims: dict[str, Any] = getattr(request, "pocare_oidc_claims", {})
    services.oidc_login(request=request, user=user, provider_key=provider.key, issuer=provider.issuer,
                        subject=str(claims.get("subject", "")), session_key=SESSION_SIGN_ON)
    return user, str(entry.get("next") or "")


class HospitalSignOnBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend for one provider per call, named by ``oidc_provider``.

    It answers only a call that names a provider (a password sign-in passes it by), and finds a
    POCare person by a stored link; it never creates one.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The library reads one provider from settings here; POCare's are per call (authenticate).
        self.UserModel = User
        self.provider: Provider | None = None
        self._algorithms: tuple[str, ...] = ()

    def get_user(self, user_id: Any) -> User | None:
        """The person of a session this backend opened, while they may still be signed in: the
        library's answers a deactivated or locked person too; POCare's password backend does not."""
        user = User.objects.filter(pk=user_id).first()
        return user if user is not None and user.is_active and user.locked_at is None else None

    def get_settings(self, attr: str, *args: Any) -> Any:
        values = {"OIDC_VERIFY_SSL": True, "OIDC_TIMEOUT": settings.POCARE_OIDC_TIMEOUT_SECONDS,
                  "OIDC_PROXY": None, "OIDC_TOKEN_USE_BASIC_AUTH": False, "OIDC_ALLOW_UNSECURED_JWT": False,
                  "OIDC_USE_NONCE": True, "OIDC_STORE_ACCESS_TOKEN": False, "OIDC_STORE_ID_TOKEN": False}
        if attr in values:
            return values[attr]
        if args:
            return args[0]
        raise ImproperlyConfigured(f"{attr} is not used by POCare's hospital sign-on.")

    def authenticate(self, request: HttpRequest | None, oidc_provider: Provider | None = None,
                     nonce: str | None = None, code_verifier: str | None = None, **kwargs: Any) -> User | None:
        if oidc_provider is None or request is None:
            return None
        try:
            return self._sign_in(request, oidc_provider, nonce=nonce, code_verifier=code_verifier)
        except SignOnRefused as exc:
            setattr(request, REFUSAL, exc)
            return None

    def _sign_in(self, request: HttpRequest, provider: Provider, *, nonce: str | None,
                 code_verifier: str | None) -> User:
        doc = discover(provider)
        self.provider, self.request = provider, request
        self.OIDC_OP_TOKEN_ENDPOINT = doc["token_endpoint"]
        self.OIDC_OP_JWKS_ENDPOINT = doc["jwks_uri"]
        self.OIDC_OP_USER_ENDPOINT = doc.get("userinfo_endpoint")
        self.OIDC_RP_CLIENT_ID = provider.client_id
        self.OIDC_RP_CLIENT_SECRET = provider.client_secret()
        self.OIDC_RP_IDP_SIGN_KEY = None
        offered = doc.get("id_token_signing_alg_values_supported") or ["RS256"]
        self._algorithms = tuple(a for a in ALGORITHMS if a in offered)
        token_payload = {
            "client_id": provider.client_id, "client_secret": self.OIDC_RP_CLIENT_SECRET,
            "grant_type": "authorization_code", "code": request.GET["code"],
            "redirect_uri": callback_url(request, provider),
        }
        if code_verifier:
            token_payload["code_verifier"] = code_verifier
        try:
            token_info = self.get_token(token_payload)
        except requests.HTTPError as exc:
            body = exc.response.text[:200] if exc.response is not None else ""
            raise SignOnRefused(f"{provider.name} refused the sign-in code (it may be used, expired or forged). "
                                "Start again from the login page.", detail=f"token exchange refused: {body}") from exc
        except (requests.RequestException, ValueError) as exc:
            raise SignOnRefused(f"{provider.name} cannot be reached now; try again later.",
                                detail=f"token exchange failed: {exc}"[:300], status=502) from exc
        id_token = token_info.get("id_token") if isinstance(token_info, dict) else None
        if not isinstance(id_token, str) or not id_token:
            raise SignOnRefused(f"{provider.name} sent no identity token.", detail="no id_token in the token response")
        try:
            alg = jwt.get_unverified_header(id_token).get("alg")
        except jwt.InvalidTokenError as exc:
            raise SignOnRefused("The identity token is malformed.", detail=f"id_token header: {exc}") from exc
        if alg not in self._algorithms:
            raise SignOnRefused(f"The identity token is signed with {str(alg)[:20]!r}, which POCare does not accept "
                                f"(allowed: {', '.join(self._algorithms)}).", detail=f"id_token alg {alg!r}")
        self.OIDC_RP_SIGN_ALGO = alg
        try:
            payload = self.verify_token(id_token, nonce=nonce)
        except SuspiciousOperation as exc:  # the library: no matching key, or the nonce differs
            raise SignOnRefused(f"The identity token from {provider.name} was refused: {exc}",
                                detail=f"id_token: {exc}") from exc
        except (requests.RequestException, ValueError, KeyError) as exc:
            raise SignOnRefused(f"The keys of {provider.name} could not be read; try again later.",
                                detail=f"jwks: {exc!r}"[:300], status=502) from exc
        subject = payload.get(provider.subject_claim)
        if not isinstance(subject, str) or not subject or len(subject) > 255:
            raise SignOnRefused(f"The identity token carries no usable {provider.subject_claim!r} claim.",
                                detail=f"no {provider.subject_claim} claim")
        request.pocare_oidc_claims = {"subject": subject}  # type: ignore[attr-defined]
        user = self._person(provider, subject, payload, token_info)
        if not user.is_active:
            raise SignOnRefused("This POCare account is deactivated; ask Control Site QA.",
                                detail="account deactivated", status=403, user=user, subject=subject)
        if user.is_locked:
            raise SignOnRefused("This account is locked after failed signatures. Another Control Site QA can "
                                "unlock it.", detail="account locked", status=403, user=user, subject=subject)
        held = [m for m in selectors.active_memberships(user) if m.site.code in provider.sites]
        if not held:
            raise SignOnRefused(f"You hold no active role at the sites {provider.name} signs in for "
                                f"({', '.join(provider.sites)}). Ask Control Site QA.",
                                detail="no active role at the provider's sites", status=403, user=user,
                                subject=subject)
        return user

    def retrieve_matching_jwk(self, token: str) -> jwt.PyJWK:
        """The provider's key for this token: the library's search by ``kid``; a token that names no
        key (allowed when the provider publishes one) is checked with that one key, never a guess."""
        header = jwt.get_unverified_header(token)
        if "kid" in header:
            key: jwt.PyJWK = super().retrieve_matching_jwk(token)
            return key
        response = requests.get(self.OIDC_OP_JWKS_ENDPOINT, timeout=settings.POCARE_OIDC_TIMEOUT_SECONDS)
        response.raise_for_status()
        keys = [k for k in response.json().get("keys", []) if isinstance(k, dict) and k.get("use", "sig") == "sig"
                and k.get("alg", header.get("alg")) == header.get("alg")]
        if len(keys) != 1:
            raise SuspiciousOperation("the token names no key (kid) and the provider publishes "
                                      f"{len(keys)} signing keys")
        return jwt.PyJWK(keys[0], algorithm=header.get("alg"))

    def _verify_jws(self, payload: str, key: Any) -> dict[str, Any]:
        """Check signature, issuer, audience, expiry and issue time (the library checks the
        signature only), each refusal named."""
        provider = self.provider
        assert provider is not None
        try:
            claims: dict[str, Any] = jwt.decode(
                payload, key, algorithms=list(self._algorithms), audience=provider.client_id,
                issuer=provider.issuer, leeway=settings.POCARE_OIDC_LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise SignOnRefused(f"The identity token from {provider.name} has expired. Start again from the login "
                                "page (and check this server's clock).", detail="id_token expired") from exc
        except jwt.InvalidIssuerError as exc:
            raise SignOnRefused(f"The identity token was issued by another issuer than {provider.issuer}.",
                                detail="id_token issuer mismatch") from exc
        except jwt.InvalidAudienceError as exc:
            raise SignOnRefused("The identity token was issued for another client.",
                                detail="id_token audience mismatch") from exc
        except jwt.InvalidSignatureError as exc:
            raise SignOnRefused(f"The identity token's signature does not verify with {provider.name}'s keys.",
                                detail="id_token signature invalid") from exc
        except jwt.InvalidTokenError as exc:
            raise SignOnRefused(f"The identity token was refused: {exc}.", detail=f"id_token invalid: {exc}") from exc
        azp = claims.get("azp")
        if azp is not None and azp != provider.client_id:
            raise SignOnRefused("The identity token was issued for another client.", detail="id_token azp mismatch")
        return claims

    def _person(self, provider: Provider, subject: str, claims: dict[str, Any], token_info: dict[str, Any]) -> User:
        """The person linked to (issuer, subject); else, where the provider allows it, the one person
        whose e-mail the provider says it verified (the link is then recorded); else refused."""
        link = (ExternalIdentity.objects.select_related("user")
                .filter(issuer=provider.issuer, subject=subject, revoked_at=None).first())
        if link is not None:
            return link.user
        if provider.link_by_email:
            info = dict(claims)
            if "email" not in info and self.OIDC_OP_USER_ENDPOINT and token_info.get("access_token"):
                try:
                    extra = self.get_userinfo(token_info["access_token"], None, claims)
                except (requests.RequestException, ValueError, SuspiciousOperation):
                    extra = {}
                if isinstance(extra, dict) and extra.get("sub") == claims.get("sub"):
                    info.update({k: extra[k] for k in ("email", "email_verified") if k in extra})
            email = info.get("email")
            if isinstance(email, str) and email and info.get("email_verified") is True:
                matches = list(User.objects.filter(email__iexact=email, is_active=True)[:2])
                if len(matches) == 1 and not matches[0].external_identities.filter(
                        issuer=provider.issuer, revoked_at=None).exists():
                    services.identity_link_by_email(user=matches[0], provider_key=provider.key,
                                                    issuer=provider.issuer, subject=subject, email=email)
                    return matches[0]
        raise SignOnRefused(
            f"Your {provider.name} account ({subject[:80]}) is not linked to a POCare person. Ask Control Site QA "
            "to link it; POCare creates no account on its own.", detail="unknown subject", status=403,
            subject=subject)
