"""Every change to people, roles, sessions and tokens (P11-300, A11-IAM).

Each function is one transaction that writes its ledger event. Failed attempts are recorded in
a transaction of their own, so refusing a login or a signature never loses the record of it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import login, logout
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
from pocare.accounts.events import AccountEvent
from pocare.accounts.models import ApiToken, Membership, User
from pocare.accounts.roles import NETWORK_ROLES, Perm, Role
from pocare.ledger.events import LedgerEvent
from pocare.ledger.services import event_record
from pocare.network.models import Site, SiteKind

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


def credentials_check(*, user: User, password: str | None, context: str) -> None:
    """Check a person's password; record a failure (counting toward lockout) and refuse.

    ``context`` is ``"login"`` or ``"signing"``; ``password=None`` records a refused attempt
    without checking anything (e.g. someone else's user id typed at a signature).
    """
    if not user.is_active:
        _failure_record(user=user, context=context, detail="account deactivated")
        raise AccessRefused("This account is deactivated.", field="username")
    if user.is_locked:
        _failure_record(user=user, context=context, detail="account locked")
        raise AccessRefused(_locked_message(), field="username")
    if password is None or not user.check_password(password):
        locked = _failure_record(user=user, context=context, detail="wrong password")
        if locked:
            raise AccessRefused(_locked_message(), field="password")
        raise AccessRefused("Wrong user id or password.", field="password")


def _locked_message() -> str:
    return (
        f"This account is locked after {settings.POCARE_LOCKOUT_THRESHOLD} failed attempts. "
        "Control Site QA can unlock it."
    )


def _failure_record(*, user: User, context: str, detail: str) -> bool:
    """Count a failed attempt in its own transaction; lock at the threshold. True if now locked."""
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
    """Log a person in, or refuse and record why (the message names no more than it must)."""
    user = User.objects.filter(username=username).first()
    if user is None:
        with transaction.atomic():
            event_record(
                actor=None,
                system="login",
                event_type=AccountEvent.LOGIN_FAILED,
                object_type="accounts.User",
                object_repr=username[:200],
                new={"username": username[:150], "detail": "unknown user id"},
            )
        raise AccessRefused("Wrong user id or password.")
    credentials_check(user=user, password=password, context="login")
    if not selectors.active_memberships(user):
        raise AccessRefused("You hold no active role in the network. Ask Control Site QA.", field="username")
    with transaction.atomic():
        old_attempts = user.failed_attempts
        login(request, user)
        if old_attempts:
            user.failed_attempts = 0
            user.save(update_fields=["failed_attempts"])
        request.session["pocare.last_activity"] = timezone.now().timestamp()
        event_record(
            actor=user,
            event_type=AccountEvent.LOGGED_IN,
            obj=user,
            old={"failed_attempts": old_attempts},
            new={"failed_attempts": 0, "session": "web"},
        )
    return user


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
    """The person sets their own password (after a reset link, at expiry, or by choice)."""
    if old_password is not None and not user.check_password(old_password):
        raise ValidationError({"old_password": "The current password is wrong."})
    if old_password is not None and old_password == new_password:
        raise ValidationError({"new_password": "Choose a password different from the current one."})
    try:
        validate_password(new_password, user)
    except ValidationError as exc:
        raise ValidationError({"new_password": exc.messages}) from exc
    with transaction.atomic():
        user.set_password(new_password)
        user.password_changed_at = timezone.now()
        user.must_change_password = False
        user.save(update_fields=["password", "password_changed_at", "must_change_password"])
        event_record(actor=user, event_type=AccountEvent.PASSWORD_SET, obj=user)


def user_unlock(*, actor: User, user: User, reason: str) -> None:
    require_perm(actor, Perm.ACCOUNTS_MANAGE)
    _require_reason(reason)
    with transaction.atomic():
        old = {"locked_at": user.locked_at, "failed_attempts": user.failed_attempts}
        user.locked_at, user.failed_attempts = None, 0
        user.save(update_fields=["locked_at", "failed_attempts"])
        event_record(actor=actor, event_type=AccountEvent.USER_UNLOCKED, obj=user, reason=reason,
                     old=old, new={"locked_at": None, "failed_attempts": 0})


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
    if (role in NETWORK_ROLES) != (site.kind == SiteKind.CONTROL):
        where = "the Control Site" if role in NETWORK_ROLES else "a POCare site"
        raise ValidationError({"site": f"{role.label} is a role held at {where}."})
    if role == Role.INSPECTOR and (valid_until is None or valid_until <= timezone.now()):
        raise ValidationError({"valid_until": "Inspector access needs an end date in the future."})
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


def token_issue(*, actor: User | None, user: User, name: str, reason: str) -> tuple[ApiToken, str]:
    """Issue a bearer token for a machine client acting as ``user``; the key is returned once.

    ``actor=None`` is the server administrator's command line (`pocare token issue`).
    """
    if actor is not None:
        require_perm(actor, Perm.ACCOUNTS_MANAGE)
    _require_reason(reason)
    if not name.strip():
        raise ValidationError({"name": "Name the client that will use this token."})
    key = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(user=user, name=name.strip()[:100], prefix=key[:12], key_hash=_digest(key))
        event_record(actor=actor, system="cli:token", event_type=AccountEvent.TOKEN_ISSUED, obj=token, reason=reason,
                     new={"user": user.username, "name": token.name, "prefix": token.prefix})
    return token, key


def token_revoke(*, actor: User, token: ApiToken, reason: str) -> None:
    require_perm(actor, Perm.ACCOUNTS_MANAGE)
    _require_reason(reason)
    with transaction.atomic():
        _token_revoke(actor=actor, token=token, reason=reason)


def _token_revoke(*, actor: User, token: ApiToken, reason: str) -> None:
    if token.revoked_at is not None:
        return
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    event_record(actor=actor, event_type=AccountEvent.TOKEN_REVOKED, obj=token, reason=reason,
                 new={"revoked_at": token.revoked_at})


def token_user(key: str) -> User | None:
    """The active person behind a bearer token, or None."""
    if not key.startswith(TOKEN_PREFIX):
        return None
    token: Any = ApiToken.objects.select_related("user").filter(key_hash=_digest(key), revoked_at=None).first()
    if token is None or not token.user.is_active or token.user.is_locked:
        return None
    user: User = token.user
    return user
