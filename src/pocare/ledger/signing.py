"""Electronic signatures: re-authenticate, then bind a person, a meaning and a time to the
SHA-256 of exactly what is signed (21 CFR 11.50, 11.70, 11.100, 11.200).

Signing is two calls, because a wrong password must be recorded even though the signing
itself is refused:

1. :func:`signing_authenticate` — *outside* the service's transaction — checks the
   credentials under the continuous-session rule and records a failure (which counts toward
   the account lock) in its own transaction; a correct password clears that count, so only
   consecutive failures lock (P11-300). Sign-in failures never lock: they are throttled per user
   id and address (accounts.services.session_login);
2. :func:`signature_apply` — *inside* the service's transaction — writes the signature and
   its ledger event next to the change being signed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from django.contrib.sessions.backends.base import SessionBase
from django.db import models
from django.http import HttpRequest
from django.utils import timezone

from pocare.core.errors import FieldRefused
from pocare.ledger.canonical import content_hash
from pocare.ledger.events import LedgerEvent
from pocare.ledger.models import Meaning, Signature
from pocare.ledger.questions import CREDENTIALS_CHECK
from pocare.ledger.services import HasSiteCode, event_record

if TYPE_CHECKING:
    from pocare.accounts.models import User

#: Session key marking that this session's owner has signed with both components.
CONTINUOUS_SESSION_KEY = "pocare.esig.continuous_user"


class Signable(Protocol):
    """A record that can be signed: it states the content a signature binds to."""

    pk: Any

    def signed_content(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class SigningCredentials:
    """What the signer typed: the user id (may be omitted inside a continuous session) and the
    password, with the session they typed it in."""

    password: str
    username: str = ""
    session: SessionBase | None = None


@dataclass(frozen=True)
class SigningProof:
    """Evidence that ``user`` re-authenticated just now, to be spent by :func:`signature_apply`."""

    user: User
    both_components: bool


class SigningRefused(FieldRefused):
    """The credentials did not authenticate the signer; the message is safe to show (the API
    answers 403 naming ``field``, pocare.core.api)."""

    def __init__(self, message: str, field: str = "password") -> None:
        super().__init__(message, field)


def credentials_from_api(request: Any, data: Mapping[str, Any]) -> SigningCredentials:
    """The signer's user id and password from an API request body. A browser's session counts
    toward the continuous-session rule; a token client (``request.auth`` set) is never in one, so
    it gives both components every time (P11-200)."""
    session = getattr(request._request, "session", None) if request.auth is None else None
    return SigningCredentials(password=data["password"], username=data.get("username", ""), session=session)


def _both_components(user_pk: Any, session: SessionBase | None) -> bool:
    return session is None or session.get(CONTINUOUS_SESSION_KEY) != user_pk


def needs_user_id(*, user: User, session: SessionBase | None) -> bool:
    """Outside a continuous session, or at its first signing, both components are required."""
    return _both_components(user.pk, session)


def signing_needs_user_id(request: HttpRequest) -> bool:
    """Whether a signing form on this page asks for the user id as well as the password: always for
    someone not signed in, else as :func:`needs_user_id` for the person and the request's session."""
    if not request.user.is_authenticated:
        return True
    return _both_components(request.user.pk, request.session)


def signing_authenticate(*, actor: User, credentials: SigningCredentials) -> SigningProof:
    """Re-authenticate ``actor`` for a signature (P11-200). A wrong password counts toward the
    account lock; a correct one clears the count (P11-300)."""
    both = needs_user_id(user=actor, session=credentials.session)
    if both and not credentials.username:
        raise SigningRefused("Enter your user id and password to sign.", field="username")
    if credentials.username and credentials.username != actor.username:
        # A signature belongs to one person (P11-100): nobody signs in another's session.
        with contextlib.suppress(SigningRefused):  # recorded as a failed attempt; refused below
            CREDENTIALS_CHECK.ask_one(user=actor, password=None, context="signing")
        raise SigningRefused("The user id is not that of the person logged in.", field="username")
    CREDENTIALS_CHECK.ask_one(user=actor, password=credentials.password, context="signing")
    if credentials.session is not None and both:
        credentials.session[CONTINUOUS_SESSION_KEY] = actor.pk
    return SigningProof(user=actor, both_components=both)


def signature_apply(
    *,
    proof: SigningProof,
    record: Signable,
    meaning: Meaning,
    site: HasSiteCode | None,
    reason: str = "",
) -> Signature:
    """Write the signature and its ledger event, in the caller's transaction."""
    if not isinstance(record, models.Model):
        raise TypeError("only model instances can be signed")
    signer = proof.user
    record_hash = content_hash(record.signed_content())
    signed_at = timezone.now()
    event = event_record(
        actor=signer,
        event_type=LedgerEvent.SIGNED,
        reason=reason,
        site=site,
        obj=record,
        new={
            "meaning": str(meaning),
            "record_hash": record_hash,
            "signed_at": signed_at,
            "printed_name": signer.printed_name,
            "both_components": proof.both_components,
        },
    )
    return Signature.objects.create(
        signer=signer,
        signer_username=signer.username,
        signer_printed_name=signer.printed_name,
        meaning=meaning,
        signed_at=signed_at,
        record_type=record._meta.label,
        record_id=str(record.pk),
        record_repr=str(record)[:200],
        record_hash=record_hash,
        chain=event.chain,
        event=event,
    )


def signatures_for(record: models.Model) -> models.QuerySet[Signature]:
    return Signature.objects.filter(record_type=record._meta.label, record_id=str(record.pk))
