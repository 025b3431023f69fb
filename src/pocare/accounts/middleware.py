"""Session policy on every request: inactivity logout and password ageing (A11-IAM, P11-300)."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone

from pocare.accounts import selectors, services
from pocare.accounts.models import User
from pocare.accounts.oidc import SESSION_SIGN_ON

_LAST = "pocare.last_activity"
_EXEMPT_PREFIXES = ("/static/", "/api/schema/")


class AccountPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if isinstance(user, User) and not request.path.startswith(_EXEMPT_PREFIXES):
            now = timezone.now().timestamp()
            last = request.session.get(_LAST)
            if last is not None and now - float(last) > settings.POCARE_IDLE_LOGOUT_SECONDS:
                services.session_logout(request=request, idle=True)
                if request.path.startswith("/api/"):
                    return JsonResponse({"detail": "Session ended after inactivity; log in again."}, status=401)
                messages.info(request, "You were logged out after a period of inactivity.")
                return redirect(f"{reverse('accounts:login')}?next={request.path}")
            request.session[_LAST] = now
            change = reverse("accounts:password_change")
            if (
                request.path not in {change, reverse("accounts:logout")}
                and selectors.password_expired(user, max_age_days=settings.POCARE_PASSWORD_MAX_AGE_DAYS)
                # Signed in through a hospital's provider with no POCare password yet: nothing to
                # change (the reset link sets it); such a person cannot sign until then.
                and not (request.session.get(SESSION_SIGN_ON) and not user.has_usable_password())
            ):
                if request.path.startswith("/api/"):
                    # The session is the browser's: the API refuses it too. A bearer token is not
                    # a session; it is governed by its own expiry (api_auth).
                    if request.headers.get("Authorization", "").startswith("Bearer "):
                        return self.get_response(request)
                    return JsonResponse(
                        {"detail": f"Your password has expired; set a new one at {change} to go on."}, status=403
                    )
                messages.warning(request, "Your password has expired or was reset: set a new one to go on.")
                return redirect("accounts:password_change")
        return self.get_response(request)
