"""Access checks for web views. Each view names its permission, which the generated
permission test (tests/test_permissions_matrix.py) reads to know what to expect; and the person
behind a request that passed them (:func:`request_actor`)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, Protocol

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from pocare.accounts import selectors
from pocare.accounts.models import User
from pocare.accounts.roles import Perm

View = Callable[..., HttpResponseBase]


class _Request(Protocol):
    """A Django request or a REST framework one: both carry the person as ``user``."""

    @property
    def user(self) -> Any: ...


def request_actor(request: _Request) -> User:
    """The person signed in on a request that :func:`requires` (or the API's permission class) let
    through, as the ``actor`` of a service."""
    user = request.user
    assert isinstance(user, User)
    return user


def requires(perm: Perm, *, write: Perm | None = None, recorded_read: bool = False) -> Callable[[View], View]:
    """Logged in and holding ``perm`` (and ``write`` for POST), else 403. Inspectors never write.

    ``recorded_read``: the view's POST only records that something was read — an export, a print,
    a verification run (GET never writes, so these are POSTs). It needs ``perm``, and read-only
    people (inspectors) may send it.
    """

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            needed = write if (request.method == "POST" and write is not None) else perm
            if request.method == "POST" and not recorded_read and selectors.is_read_only(request.user):
                raise PermissionDenied("Read-only access.")
            if not selectors.has_perm(request.user, needed):
                raise PermissionDenied(f"This needs the permission {needed}.")
            return view(request, *args, **kwargs)

        wrapped.required_perm = perm  # type: ignore[attr-defined]
        wrapped.write_perm = write  # type: ignore[attr-defined]
        wrapped.recorded_read = recorded_read  # type: ignore[attr-defined]
        return wrapped

    return decorate


def signed_in(view: View) -> View:
    """Any logged-in person with an active role."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not selectors.active_memberships(request.user):
            raise PermissionDenied("You hold no active role.")
        return view(request, *args, **kwargs)

    wrapped.required_perm = "signed_in"  # type: ignore[attr-defined]
    return wrapped


def public(view: View) -> View:
    """Reachable without logging in (login page, password set link)."""
    view.required_perm = "public"  # type: ignore[attr-defined]
    return view
