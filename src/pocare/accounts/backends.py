"""Authentication backends: django-axes's throttle first, then POCare's password policy.

Every refusal costs the same Argon2 work (no timing tells whether a user id exists, is locked,
deactivated or throttled) and gets the same message (``services.LOGIN_REFUSED``).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from axes.attempts import get_cool_off_threshold
from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse

from pocare.accounts.models import User

#: Set on the request when the throttle, not the password, refused the sign-in (for the ledger).
THROTTLED = "pocare_throttled"


def client_ip(request: HttpRequest) -> str:
    """The client's address: ``REMOTE_ADDR``, validated (it is stored in address columns).

    Behind the TLS proxy named by ``POCARE_TRUSTED_PROXY``, ``pocare serve`` (waitress) has already
    put the address the proxy forwarded there, and drops ``X-Forwarded-For`` from anyone else; so a
    client can never choose its own address by writing that header (docs/access.md "Production").
    """
    remote = str(request.META.get("REMOTE_ADDR") or "")
    try:
        return str(ipaddress.ip_address(remote))
    except ValueError:
        return ""


class ThrottleBackend(AxesStandaloneBackend):
    """django-axes's check per user id + address, plus a looser limit per address alone.

    A throttled attempt still runs the password hasher once, so it answers in the same time.
    """

    def authenticate(self, request: HttpRequest | None, username: str | None = None,
                     password: str | None = None, **kwargs: Any) -> None:
        try:
            super().authenticate(request, username=username, password=password, **kwargs)
            if request is not None and _address_over_limit(request):
                raise AxesBackendPermissionDenied("too many failed sign-ins from this address")
        except AxesBackendPermissionDenied:
            setattr(request, THROTTLED, True)
            User().set_password(password)  # the same Argon2 work as a checked password
            raise


def _address_over_limit(request: HttpRequest) -> bool:
    """Failures from this address over every user id within the cool-off, at or above the limit."""
    address = getattr(request, "axes_ip_address", None) or client_ip(request)
    total = AccessAttempt.objects.filter(
        ip_address=address, attempt_time__gte=get_cool_off_threshold(request)
    ).aggregate(n=Sum("failures_since_start"))["n"] or 0
    return bool(total >= settings.POCARE_LOGIN_IP_FAILURE_LIMIT)


def lockout_response(request: HttpRequest, original_response: HttpResponse | None = None,
                     credentials: Any = None) -> HttpResponse:
    """The login view already answered with POCare's one refusal message; keep that answer."""
    if original_response is None:  # only when axes is called outside the login view
        return HttpResponse("Sign-in refused.", status=400)
    return original_response


class PolicyBackend(ModelBackend):
    """Django's password check (which hashes a dummy for an unknown user id), refusing locked
    and deactivated people after the same work."""

    def user_can_authenticate(self, user: Any) -> bool:
        return bool(super().user_can_authenticate(user)) and getattr(user, "locked_at", None) is None
