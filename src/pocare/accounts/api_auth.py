"""How the API knows who is calling and what they may do.

Browsers use their session (with CSRF; a locked person's session stops resolving to them, see
backends.PolicyBackend; an expired password stops it at the API too, see middleware); machine
clients send ``Authorization: Bearer <token>``, governed by the token's own expiry and scope, not
by the password's age (a device has no password to renew).
Each API view names the permission it needs in ``required_perm`` (reads) and ``write_perm``
(writes); querysets are scoped by selectors, so another site's objects simply do not exist.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from pocare.accounts import selectors
from pocare.accounts.backends import client_ip
from pocare.accounts.models import ApiToken, TokenScope, User
from pocare.accounts.services import TokenRefused, token_authenticate


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <token>``; an unknown, expired or revoked token gets 401 saying which."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if parts[0] != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        try:
            token = token_authenticate(parts[1], ip_address=client_ip(request._request) or None)
        except TokenRefused as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from exc
        user: User = token.user
        return user, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


#: ``required_perm`` of an endpoint open to anyone signed in with an active role (the view scopes
#: what they see, e.g. their own tokens).
SIGNED_IN = "signed_in"


class RequiresPerm(permissions.BasePermission):
    """Deny by default: a view must name the permission it needs (or :data:`SIGNED_IN`)."""

    message = "You do not have the role this needs."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        perm = getattr(view, "required_perm", None)
        token = request.auth
        # ``recorded_read`` views: the POST only records an export (GET never writes); read-only
        # people and read-scope tokens may send it with the read permission.
        recorded_read = bool(getattr(view, "recorded_read", False))
        if (
            isinstance(token, ApiToken)
            and token.scope == TokenScope.READ
            and request.method not in permissions.SAFE_METHODS
            and not recorded_read
        ):
            raise exceptions.PermissionDenied(
                f"Token {token.prefix}… is read-only (scope 'read'): it may not {request.method}. "
                "Ask Control Site QA for a token with scope 'write'."
            )
        if request.method not in permissions.SAFE_METHODS and not recorded_read:
            perm = getattr(view, "write_perm", None)
            if perm is not None and selectors.is_read_only(user):
                return False
        if perm is None:
            return False
        if perm == SIGNED_IN:
            return bool(selectors.active_memberships(user))
        return selectors.has_perm(user, perm)


class BearerTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """Documents the bearer token in the OpenAPI schema."""

    target_class = "pocare.accounts.api_auth.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "Token issued with `pocare token issue` or POST /api/tokens/",
        }
