"""Every change to people, roles, sessions and tokens (P11-300, A11-IAM).

Each function is one transaction that writes its ledger event. Failed attempts are recorded in
a transaction of their own, so refusing a login or a signature never loses the record of it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import TYPE_CHECKING

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import authenticate, login, logout
from django.contrib.auth.hashers import check_password, is_password_usable
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from pocare.accounts import selectors
from pocare.accounts.backends import THROTTLED, client_ip
from pocare.accounts.events import AccountEvent
from pocare.accounts.models import ApiToken, ExternalIdentity, Membership, PasswordHistory, TokenScope, User
from pocare.accounts.roles import NETWORK_ROLES, Perm, Role
from pocare.ledger.events import LedgerEvent
from pocare.ledger.services import event_record
from pocare.ledger.signing import SigningRefused

if TYPE_CHECKING:
    from pocare.network.models import Site  # a site arrives through Membership.site; no import at run time

TOKEN_PREFIX = "pct_"  # noqa: S105 — a marker, not a secret


class AccessRefused(Exception):
    """Authentication was refused; the message is safe to show to the person."""

    def __init__(self, message: str, field: str = "password") -> None:
        super().__init__(message)
        self.field = field


def require_perm(actor: User, perm: Perm, *, site: Site | None = None) -> None:
    """Authority check inside a service (P11-10g): views check too, but services never trust them."""
    if selectors.is_read_only(actor) or not selectors.has_perm(
        actor, perm, site_id=site.pk if site is not None else None
    ):
        raise PermissionDenied(f"{actor.username} may not do this ({perm}).")


# --- authentication -----------------------------------------------------------------------------


#: The one answer to every refused sign-in: unknown user id, wrong password, locked, deactivated
#: or throttled all read the same (no account enumeration, docs/access.md).
LOGIN_REFUSED = (
    "Wrong user id or password, or sign-in is paused for this account from this address. "
    "Try again later or ask Control Site QA."
)


#: A person who signs in through a hospital's provider signs with their POCare password
#: (docs/access.md "Signatures after hospital sign-on"); until they set one, this is the answer.
SIGNING_UNSET = (
    "You have no POCare signing password yet. Set it with the link Control Site QA e-mails you "
    "(ask for a password reset); your hospital sign-in alone cannot sign."
)


def credentials_check(*, user: User, password: str | None, context: str = "signing") -> None:
    """Check the password of a person who is already signed in, for a signature (P11-200).

    A failure is recorded and counts toward the account lock (P11-300); a success clears the count.
    ``password=None`` records a refused attempt without checking anything (e.g. someone else's user
    id typed at a signature). Sign-in does not come here: it is throttled per user id and address
    (:func:`session_login`), so nobody outside can lock an account.
    """
    if not user.is_active:
        _failure_record(user=user, context=context, detail="account deactivated")
        raise AccessRefused("This account is deactivated.", field="username")
    if user.is_locked:
        _failure_record(user=user, context=context, detail="account locked")
        raise AccessRefused(_locked_message(), field="username")
    if password is not None and not is_password_usable(user.password):
        # Signed in through a hospital's provider but never set a POCare password: the signature's
        # second component is missing, not wrong, so this is recorded and not counted toward the lock.
        with transaction.atomic():
            event_record(actor=None, system=f"{context}:{user.username}"[:150],
                         event_type=LedgerEvent.SIGNING_FAILED if context == "signing" else AccountEvent.LOGIN_FAILED,
                         obj=user, new={"detail": "no signing password set"})
        raise AccessRefused(SIGNING_UNSET, field="password")
    if password is None or not user.check_password(password):
        locked = _failure_record(user=user, context=context, detail="wrong password")
        if locked:
            raise AccessRefused(_locked_message(), field="password")
        raise AccessRefused("Wrong user id or password.", field="password")
    if user.failed_attempts:
        _failures_clear(user=user)


def signing_credentials_check(*, user: User, password: str | None, context: str = "signing") -> None:
    """:func:`credentials_check` as the ledger asks it at a signature (``CREDENTIALS_CHECK``): a
    refusal becomes the ledger's :class:`SigningRefused`, on the field it names."""
    try:
        credentials_check(user=user, password=password, context=context)
    except AccessRefused as exc:
        raise SigningRefused(str(exc), field=exc.field) from exc


def _locked_message() -> str:
    return (
        f"This account is locked after {settings.POCARE_LOCKOUT_THRESHOLD} failed signatures. "
        "Another Control Site QA can unlock it."
    )


def _failures_clear(*, user: User) -> None:
    """A correct signature password ends the run of failures (P11-300): only consecutive ones lock."""
    with transaction.atomic():
        old = User.objects.select_for_update().values_list("failed_attempts", flat=True).get(pk=user.pk)
        User.objects.filter(pk=user.pk).update(failed_attempts=0)
        event_record(actor=user, event_type=AccountEvent.FAILURES_CLEARED, obj=user,
                     old={"failed_attempts": old}, new={"failed_attempts": 0})
    user.failed_attempts = 0


def _failure_record(*, user: User, context: str, detail: str) -> bool:
    """Count a failed signature in its own transaction; lock at the threshold. True if now locked."""
    with transaction.atomic():
        locked_user = User.objects.select_for_update().get(pk=user.pk)
        old_attempts = locked_user.failed_attempts
        locked_user.failed_attempts = old_attempts + 1
        newly_locked = (
            locked_user.locked_at is None
            and locked_user.failed_attempts >= settings.POCARE_LOCKOUT_THRESHOLD
        )
        if newly_locked:
            locked_user.locked_at = timezone.now()
        locked_user.save(update_fields=["failed_attempts", "locked_at"])
        event_record(
            actor=None,
            system=f"{context}:{user.username}"[:150],
            event_type=LedgerEvent.SIGNING_FAILED if context == "signing" else AccountEvent.LOGIN_FAILED,
            obj=locked_user,
            old={"failed_attempts": old_attempts},
            new={"failed_attempts": locked_user.failed_attempts, "detail": detail},
        )
        if newly_locked:
            event_record(
                actor=None,
                system="lockout",
                event_type=AccountEvent.USER_LOCKED,
                obj=locked_user,
                reason=f"{locked_user.failed_attempts} consecutive failed attempts",
                new={"locked_at": locked_user.locked_at},
            )
            transaction.on_commit(lambda: _notify_quality(locked_user))
    user.failed_attempts, user.locked_at = locked_user.failed_attempts, locked_user.locked_at
    return locked_user.locked_at is not None


def _notify_quality(user: User) -> None:
    """Tell Control Site QA about a lockout: a possible attempt at unauthorized use (P11-300)."""
    recipients = list(
        User.objects.filter(
            memberships__role=Role.CONTROL_QA, memberships__revoked_at=None, is_active=True
        )
        .exclude(email="")
        .values_list("email", flat=True)
        .distinct()
    )
    if recipients:
        send_mail(
            f"POCare: account {user.username} locked",
            f"The account of {user.printed_name} ({user.username}) was locked after "
            f"{user.failed_attempts} failed attempts. Review the audit trail before unlocking.",
            None,
            recipients,
        )


def session_login(*, request: HttpRequest, username: str, password: str) -> User:
    """Log a person in, or refuse with :data:`LOGIN_REFUSED` and record why in the ledger.

    ``authenticate`` runs django-axes's throttle (per user id and client address) and then the
    password check; every refusal does the same Argon2 work and says the same thing. A refused
    sign-in never counts toward the account lock: that would let anyone lock anyone out.
    """
    user = authenticate(request, username=username, password=password)
    if user is None:
        _login_failure_record(request=request, username=username)
        raise AccessRefused(LOGIN_REFUSED)
    assert isinstance(user, User)
    if not selectors.active_memberships(user):
        raise AccessRefused("You hold no active role in the network. Ask Control Site QA.", field="username")
    with transaction.atomic():
        login(request, user)
        request.session["pocare.last_activity"] = timezone.now().timestamp()
        event_record(
            actor=user,
            event_type=AccountEvent.LOGGED_IN,
            obj=user,
            new={"session": "web", "ip_address": client_ip(request)},
        )
    return user


def _login_failure_record(*, request: HttpRequest, username: str) -> None:
    """The ledger's record of a refused sign-in, with what the person was not told (P11-300)."""
    known = User.objects.filter(username=username).first()
    if getattr(request, THROTTLED, False):
        detail = "throttled: too many failures for this user id from this address"
    elif known is None:
        detail = "unknown user id"
    elif not known.is_active:
        detail = "account deactivated"
    elif known.is_locked:
        detail = "account locked"
    else:
        detail = "wrong password"
    new = {"username": username[:150], "detail": detail, "ip_address": client_ip(request)}
    with transaction.atomic():
        if known is None:
            event_record(actor=None, system="login", event_type=AccountEvent.LOGIN_FAILED,
                         object_type="accounts.User", object_repr=username[:200], new=new)
        else:
            event_record(actor=None, system=f"login:{known.username}"[:150],
                         event_type=AccountEvent.LOGIN_FAILED, obj=known, new=new)


def session_logout(*, request: HttpRequest, idle: bool = False) -> None:
    """End a session (by the person, or after inactivity). Ends the continuous signing session too."""
    user = request.user
    with transaction.atomic():
        if isinstance(user, User):
            event_record(
                actor=user,
                event_type=AccountEvent.IDLE_LOGOUT if idle else AccountEvent.LOGGED_OUT,
                obj=user,
                reason=f"no activity for {settings.POCARE_IDLE_LOGOUT_SECONDS} s" if idle else "",
            )
        logout(request)


# --- hospital sign-on (OpenID Connect; the protocol is accounts.oidc) ----------------------------


def oidc_login(*, request: HttpRequest, user: User, provider_key: str, issuer: str, subject: str,
               session_key: str) -> None:
    """Open the session of a person a hospital's provider signed in (``accounts.oidc.callback``)."""
    with transaction.atomic():
        login(request, user)
        request.session["pocare.last_activity"] = timezone.now().timestamp()
        request.session[session_key] = {"provider": provider_key, "issuer": issuer, "subject": subject}
        event_record(
            actor=user,
            event_type=AccountEvent.LOGGED_IN,
            obj=user,
            new={"session": "web", "via": "oidc", "provider": provider_key, "issuer": issuer, "subject": subject,
                 "ip_address": client_ip(request)},
        )


def oidc_failure_record(*, request: HttpRequest, provider_key: str, detail: str, user: User | None = None,
                        subject: str = "") -> None:
    """The ledger's record of a refused sign-in through a provider, with its real reason."""
    new = {"via": "oidc", "provider": provider_key, "subject": subject[:255], "detail": detail[:300],
           "ip_address": client_ip(request)}
    with transaction.atomic():
        if user is None:
            event_record(actor=None, system=f"oidc:{provider_key}", event_type=AccountEvent.LOGIN_FAILED,
                         object_type="accounts.User", object_repr=(subject or provider_key)[:200], new=new)
        else:
            event_record(actor=None, system=f"oidc:{provider_key}:{user.username}"[:150],
                         event_type=AccountEvent.LOGIN_FAILED, obj=user, new=new)


def identity_link(*, actor: User | None, user: User, provider_key: str, issuer: str, subject: str,
                  reason: str) -> ExternalIdentity:
    """Link a person to their account at a hospital's provider (Control Site QA, or the server
    administrator's ``pocare account link``). The link grants nothing: roles stay memberships."""
    if actor is not None:
        require_perm(actor, Perm.ACCOUNTS_MANAGE)
    _require_reason(reason)
    subject = subject.strip()
    if not subject or len(subject) > 255:
        raise ValidationError({"subject": "Give the person's subject at the provider (1 to 255 characters)."})
    if not user.is_active:
        raise ValidationError({"user": "A deactivated person cannot be linked."})
    with transaction.atomic():
        taken = ExternalIdentity.objects.select_for_update().filter(issuer=issuer, subject=subject,
                                                                    revoked_at=None).first()
        if taken is not None:
            raise ValidationError({"subject": f"This subject at {provider_key} is already linked to "
                                              f"{taken.user.printed_name}; revoke that link first."})
        identity = ExternalIdentity.objects.create(user=user, provider=provider_key, issuer=issuer, subject=subject,
                                                   via=ExternalIdentity.Via.ADMIN, linked_by=actor)
        event_record(actor=actor, system="cli:account-link", event_type=AccountEvent.IDENTITY_LINKED, obj=identity,
                     reason=reason, new={"user": user.username, "provider": provider_key, "issuer": issuer,
                                         "subject": subject, "via": identity.via})
    return identity


def identity_link_by_email(*, user: User, provider_key: str, issuer: str, subject: str, email: str) -> ExternalIdentity:
    """Link on a first sign-in: the provider vouched for the e-mail of exactly one active person and
    the provider is configured to allow it (``link_by_email``); recorded as the system's act."""
    with transaction.atomic():
        identity = ExternalIdentity.objects.create(user=user, provider=provider_key, issuer=issuer, subject=subject,
                                                   via=ExternalIdentity.Via.EMAIL)
        event_record(actor=None, system=f"oidc:{provider_key}", event_type=AccountEvent.IDENTITY_LINKED,
                     obj=identity, reason="first sign-in with an e-mail the provider verified",
                     new={"user": user.username, "provider": provider_key, "issuer": issuer, "subject": subject,
                          "via": identity.via, "email": email[:254]})
    return identity


def identity_revoke(*, actor: User, identity: ExternalIdentity, reason: str) -> None:
    """End a link: that provider account no longer signs in as the person."""
    require_perm(actor, Perm.ACCOUNTS_MANAGE)
    _require_reason(reason)
    if identity.revoked_at is not None:
        raise ValidationError({"identity": "This link was already revoked."})
    with transaction.atomic():
        identity.revoked_at, identity.revoked_by = timezone.now(), actor
        identity.save(update_fields=["revoked_at", "revoked_by"])
        event_record(actor=actor, event_type=AccountEvent.IDENTITY_REVOKED, obj=identity, reason=reason,
                     new={"revoked_at": identity.revoked_at, "subject": identity.subject,
                          "provider": identity.provider})


# --- people -------------------------------------------------------------------------------------


def user_create(
    *,
    actor: User | None,
    username: str,
    printed_name: str,
    email: str,
    reason: str,
    initial_password: str | None = None,
) -> User:
    """Create a person's account. The person sets their own password through an e-mailed link.

    ``initial_password`` exists only for unattended bootstrap (``actor=None``: the demo loader,
    first installation); no person can set a known password for someone else.
    """
    if actor is not None:
        require_perm(actor, Perm.ACCOUNTS_MANAGE)
        _require_reason(reason)
        if initial_password is not None:
            raise PermissionDenied("Nobody sets a known password for another person.")
    user = User(username=username, printed_name=printed_name.strip(), email=email)
    if not user.printed_name:
        raise ValidationError({"printed_name": "The printed name is required: it appears with every signature."})
    user.full_clean(exclude=["password"])
    with transaction.atomic():
        if initial_password is None:
            user.set_unusable_password()
            user.must_change_password = True
        else:
            user.set_password(initial_password)
            user.password_changed_at = timezone.now()
        user.save()
        event_record(
            actor=actor,
            system="bootstrap",
            event_type=AccountEvent.USER_CREATED,
            obj=user,
            reason=reason,
            new={"username": username, "printed_name": user.printed_name, "email": email},
        )
        if initial_password is None:
            transaction.on_commit(lambda: _send_set_password_link(user))
    return user


def _send_set_password_link(user: User) -> None:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    send_mail(
        "POCare: set your password",
        f"Hello {user.printed_name},\n\nset your POCare password at /password/set/{uid}/{token}/\n"
        "The link works once. If you did not expect this, tell Control Site QA.",
        None,
        [user.email],
    )


def password_reset_issue(*, actor: User, user: User, reason: str) -> None:
    """Invalidate a person's password and e-mail them a link to set their own (lost credentials)."""
    require_perm(actor, Perm.ACCOUNTS_MANAGE)
    _require_reason(reason)
    with transaction.atomic():
        user.set_unusable_password()
        user.must_change_password = True
        user.save(update_fields=["password", "must_change_password"])
        for token in user.api_tokens.filter(revoked_at=None):
            _token_revoke(actor=actor, token=token, reason="password reset")
        event_record(actor=actor, event_type=AccountEvent.PASSWORD_RESET, obj=user, reason=reason)
        transaction.on_commit(lambda: _send_set_password_link(user))


def password_set(*, user: User, new_password: str, old_password: str | None = None) -> None:
    """The person sets their own password (after a reset link, at expiry, or by choice).

    None of their last ``POCARE_PASSWORD_HISTORY`` passwords (the current one included) may come
    back (P11-300); the replaced hash is kept in :class:`PasswordHistory`.
    """
    if old_password is not None and not user.check_password(old_password):
        raise ValidationError({"old_password": "The current password is wrong."})
    if old_password is not None and old_password == new_password:
        raise ValidationError({"new_password": "Choose a password different from the current one."})
    try:
        validate_password(new_password, user)
    except ValidationError as exc:
        raise ValidationError({"new_password": exc.messages}) from exc
    keep = settings.POCARE_PASSWORD_HISTORY
    earlier = [user.password, *user.password_history.values_list("password", flat=True)[: max(keep - 1, 0)]]
    if any(is_password_usable(h) and check_password(new_password, h) for h in earlier[:keep]):
        raise ValidationError({"new_password": f"This password was one of your last {keep}; choose a new one."})
    with transaction.atomic():
        if is_password_usable(user.password):
            PasswordHistory.objects.create(user=user, password=user.password, set_at=user.password_changed_at)
        user.set_password(new_password)
        user.password_changed_at = timezone.now()
        user.must_change_password = False
        user.save(update_fields=["password", "password_changed_at", "must_change_password"])
        event_record(actor=user, event_type=AccountEvent.PASSWORD_SET, obj=user)


def user_unlock(*, actor: User | None, user: User, reason: str) -> None:
    """Unlock an account and clear its sign-in throttle (P11-300).

    Another Control Site QA does it (nobody unlocks themselves: a locked person could not act
    anyway, and a second person confirms who asks). ``actor=None`` is the server administrator's
    ``pocare account unlock`` for when no QA is left; the ledger records it as
    ``cli:account-unlock`` with the reason.
    """
    if actor is not None:
        if actor.pk == user.pk:
            raise ValidationError({"user": "Nobody unlocks their own account: ask another Control Site QA."})
        require_perm(actor, Perm.ACCOUNTS_MANAGE)
    _require_reason(reason)
    with transaction.atomic():
        old = {"locked_at": user.locked_at, "failed_attempts": user.failed_attempts}
        user.locked_at, user.failed_attempts = None, 0
        user.save(update_fields=["locked_at", "failed_attempts"])
        cleared = AccessAttempt.objects.filter(username=user.username).delete()[0]
        new: dict[str, object] = {"locked_at": None, "failed_attempts": 0}
        if cleared:
            new["sign_in_throttles_cleared"] = cleared  # django-axes rows of this user id
        event_record(actor=actor, system="cli:account-unlock", event_type=AccountEvent.USER_UNLOCKED, obj=user,
                     reason=reason, old=old, new=new)


def user_deactivate(*, actor: User, user: User, reason: str) -> None:
    """Deactivate a person (never delete): their records and signatures stay theirs."""
    require_perm(actor, Perm.ACCOUNTS_MANAGE)
    _require_reason(reason)
    if user.pk == actor.pk:
        raise ValidationError({"user": "You cannot deactivate your own account."})
    with transaction.atomic():
        user.is_active = False
        user.deactivated_at = timezone.now()
        user.save(update_fields=["is_active", "deactivated_at"])
        for token in user.api_tokens.filter(revoked_at=None):
            _token_revoke(actor=actor, token=token, reason="user deactivated")
        event_record(actor=actor, event_type=AccountEvent.USER_DEACTIVATED, obj=user, reason=reason,
                     old={"is_active": True}, new={"is_active": False})


def _require_reason(reason: str) -> None:
    if not reason or not reason.strip():
        raise ValidationError({"reason": "A reason is required for this change."})


# --- roles --------------------------------------------------------------------------------------


def membership_grant(
    *,
    actor: User | None,
    user: User,
    role: Role,
    site: Site,
    reason: str,
    valid_until: dt.datetime | None = None,
) -> Membership:
    """Give a person a role at a site. Control Site roles are held at the Control Site;
    inspectors always get an end date."""
    if actor is not None:
        require_perm(actor, Perm.ACCOUNTS_MANAGE)
    _require_reason(reason)
    role = Role(role)
    if (role in NETWORK_ROLES) != site.is_control:
        where = "the Control Site" if role in NETWORK_ROLES else "a POCare site"
        raise ValidationError({"site": f"{role.label} is a role held at {where}."})
    if role == Role.INSPECTOR:
        now = timezone.now()
        latest = now + dt.timedelta(days=settings.POCARE_INSPECTOR_MAX_DAYS)
        if valid_until is None or valid_until <= now:
            raise ValidationError({"valid_until": "Inspector access needs an end date in the future."})
        if valid_until > latest:
            raise ValidationError({"valid_until": (
                f"Inspector access may last at most {settings.POCARE_INSPECTOR_MAX_DAYS} days: "
                f"{valid_until:%Y-%m-%d %H:%M} UTC is after the latest allowed end, {latest:%Y-%m-%d %H:%M} UTC."
            )})
    with transaction.atomic():
        membership = Membership.objects.create(
            user=user, role=role, site=site, granted_by=actor, valid_until=valid_until
        )
        event_record(
            actor=actor,
            system="bootstrap",
            event_type=AccountEvent.ROLE_GRANTED,
            obj=membership,
            site=site,
            reason=reason,
            new={"user": user.username, "role": role.value, "site": site.code, "valid_until": valid_until},
        )
    selectors.forget_memberships(user)
    return membership


def membership_revoke(*, actor: User, membership: Membership, reason: str) -> None:
    require_perm(actor, Perm.ACCOUNTS_MANAGE)
    _require_reason(reason)
    if membership.revoked_at is not None:
        raise ValidationError({"membership": "This role was already revoked."})
    with transaction.atomic():
        membership.revoked_at = timezone.now()
        membership.revoked_by = actor
        membership.save(update_fields=["revoked_at", "revoked_by"])
        event_record(actor=actor, event_type=AccountEvent.ROLE_REVOKED, obj=membership,
                     site=membership.site, reason=reason, new={"revoked_at": membership.revoked_at})
    selectors.forget_memberships(membership.user)


# --- machine tokens -----------------------------------------------------------------------------


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def token_issue(
    *,
    actor: User | None,
    user: User,
    name: str,
    reason: str,
    scope: str = TokenScope.WRITE,
    days: int | None = None,
) -> tuple[ApiToken, str]:
    """Issue a bearer token for a machine client acting as ``user``; the key is returned once.

    The token ends after ``days`` (default ``POCARE_TOKEN_DEFAULT_DAYS``, at most
    ``POCARE_TOKEN_MAX_AGE_DAYS``); a ``read`` token is refused every change.
    ``actor=None`` is the server administrator's command line (`pocare token issue`).
    """
    if actor is not None:
        require_perm(actor, Perm.ACCOUNTS_MANAGE)
    _require_reason(reason)
    if not name.strip():
        raise ValidationError({"name": "Name the client that will use this token."})
    if scope not in TokenScope.values:
        raise ValidationError({"scope": f"Scope {scope!r} is not one of: {', '.join(TokenScope.values)}."})
    days = settings.POCARE_TOKEN_DEFAULT_DAYS if days is None else days
    longest = settings.POCARE_TOKEN_MAX_AGE_DAYS
    if not 1 <= days <= longest:
        raise ValidationError({"days": f"A token lives from 1 to {longest} days; {days} is outside that."})
    key = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        token = ApiToken.objects.create(user=user, name=name.strip()[:100], prefix=key[:12], key_hash=_digest(key),
                                        scope=scope, created_at=now, expires_at=now + dt.timedelta(days=days))
        event_record(actor=actor, system="cli:token", event_type=AccountEvent.TOKEN_ISSUED, obj=token, reason=reason,
                     new={"user": user.username, "name": token.name, "prefix": token.prefix, "scope": scope,
                          "expires_at": token.expires_at})
    return token, key


def token_revoke(*, actor: User, token: ApiToken, reason: str) -> None:
    """Revoke a token: its owner may, and so may Control Site QA (ACCOUNTS_MANAGE)."""
    if token.user_id != actor.pk:
        require_perm(actor, Perm.ACCOUNTS_MANAGE)
    _require_reason(reason)
    if token.revoked_at is not None:
        raise ValidationError(
            {"token": f"Token {token.prefix}… was already revoked on {token.revoked_at:%Y-%m-%d %H:%M} UTC."}
        )
    with transaction.atomic():
        _token_revoke(actor=actor, token=token, reason=reason)


def _token_revoke(*, actor: User, token: ApiToken, reason: str) -> None:
    if token.revoked_at is not None:
        return
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    event_record(actor=actor, event_type=AccountEvent.TOKEN_REVOKED, obj=token, reason=reason,
                 new={"revoked_at": token.revoked_at})


class TokenRefused(Exception):
    """A bearer token that does not (or no longer) authenticate; the message says why."""


#: How often a token's last use is written at most (one UPDATE per token per interval).
TOKEN_TOUCH_INTERVAL = dt.timedelta(minutes=1)


def token_authenticate(key: str, *, ip_address: str | None = None) -> ApiToken:
    """The token behind ``key``, if it works now; notes its last use (time and address).

    Raises :class:`TokenRefused` with a message naming why: unknown, revoked on…, expired on…,
    or its person deactivated or locked.
    """
    token: ApiToken | None = None
    if key.startswith(TOKEN_PREFIX):
        token = ApiToken.objects.select_related("user").filter(key_hash=_digest(key)).first()
    if token is None:
        raise TokenRefused("Unknown token.")
    now = timezone.now()
    if token.revoked_at is not None:
        raise TokenRefused(f"This token was revoked on {token.revoked_at:%Y-%m-%d %H:%M} UTC.")
    if token.expires_at is not None and now >= token.expires_at:
        raise TokenRefused(f"This token expired on {token.expires_at:%Y-%m-%d %H:%M} UTC; ask for a new one.")
    if not token.user.is_active or token.user.is_locked:
        raise TokenRefused("The person this token acts as is deactivated or locked.")
    if ip_address is not None and (
        token.last_used_at is None or now - token.last_used_at >= TOKEN_TOUCH_INTERVAL
        or ip_address != token.last_used_ip
    ):
        _token_touch(token=token, at=now, ip_address=ip_address)
    return token


def _token_touch(*, token: ApiToken, at: dt.datetime, ip_address: str) -> None:
    """Note a token's last use. Not a GMP record and not a change anyone makes, so no ledger event
    (a device pushing every second would flood the trail): one UPDATE of two columns, at most once
    a minute per token (or when the address changes)."""
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=at, last_used_ip=ip_address or None)
    token.last_used_at, token.last_used_ip = at, ip_address or None


def token_user(key: str) -> User | None:
    """The active person behind a bearer token that works now, or None."""
    try:
        user: User = token_authenticate(key).user
    except TokenRefused:
        return None
    return user
