"""How the API knows who is calling and what they may do.

Browsers use their session (with CSRF; a locked person's session stops resolving to them, see
backends.PolicyBackend); machine clients send ``Authorization: Bearer <token>``.
Each API view names the permission it needs in ``required_perm`` (reads) and ``write_perm``
(writes); querysets are scoped by selectors, so another site's objects simply do not exist.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from pocare.accounts import selectors
from pocare.accounts.models import User
from pocare.accounts.services import token_user


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[User, None] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if parts[0] != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        user = token_user(parts[1])
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid, revoked or inactive token.")
        return user, None

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class RequiresPerm(permissions.BasePermission):
    """Deny by default: a view must name the permission it needs."""

    message = "You do not have the role this needs."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        perm = getattr(view, "required_perm", None)
        if request.method not in permissions.SAFE_METHODS and not getattr(view, "recorded_read", False):
            # ``recorded_read`` views: the POST only records an export (GET never writes); read-only
            # people may send it with the read permission.
            perm = getattr(view, "write_perm", None)
            if perm is not None and selectors.is_read_only(user):
                return False
        if perm is None:
            return False
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
