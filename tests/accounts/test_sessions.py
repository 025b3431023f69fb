"""Logging in and out, inactivity, password ageing (P11-300, A11-IAM). Sign-in throttling and the
account lock: tests/accounts/test_sign_in.py."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from pocare.accounts.events import AccountEvent
from pocare.ledger.models import Event
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _events(kind: str, user) -> int:  # type: ignore[no-untyped-def]
    return Event.objects.filter(event_type=kind, object_id=str(user.pk), object_type="accounts.User").count()


def test_login_is_recorded_and_a_failed_login_does_not_count_toward_the_account_lock(client, people):
    """P11-300: successful logins are audit events; a refused sign-in is recorded but never locks
    the account (the throttle is per user id and address, tests/accounts/test_sign_in.py)."""
    op = people["operator.mad"]
    client.post("/login/", {"username": "operator.mad", "password": "nope"})
    response = client.post("/login/", {"username": "operator.mad", "password": PASSWORD})
    assert response.status_code == 302 and response.url == "/"
    op.refresh_from_db()
    assert op.failed_attempts == 0 and op.locked_at is None
    assert _events(AccountEvent.LOGIN_FAILED, op) == 1 and _events(AccountEvent.LOGGED_IN, op) == 1


def test_a_failed_attempt_survives_the_refusal(tx_db, client):
    """P11-300: the failure record (ledger event and throttle count) commits though the login is refused."""
    from axes.models import AccessAttempt

    from pocare.accounts.models import User

    client.post("/login/", {"username": "navigator.gro", "password": "guess"})
    user = User.objects.get(username="navigator.gro")
    assert _events(AccountEvent.LOGIN_FAILED, user) == 1
    assert AccessAttempt.objects.get(username="navigator.gro").failures_since_start == 1


def test_unknown_user_ids_are_recorded_without_saying_they_do_not_exist(client):
    """P11-300: the message is the same as for a wrong password."""
    from pocare.accounts.services import LOGIN_REFUSED

    response = client.post("/login/", {"username": "mallory", "password": "x"})
    assert response.context["form"].non_field_errors() == [LOGIN_REFUSED]
    event = Event.objects.get(event_type=AccountEvent.LOGIN_FAILED, object_repr="mallory")
    assert event.new["detail"] == "unknown user id" and event.new["ip_address"] == "127.0.0.1"


def test_inactivity_logs_the_person_out(client, login, people, settings):
    """A11-IAM: after the idle limit the session ends, is recorded, and the person logs in again."""
    login("qp")
    session = client.session
    session["pocare.last_activity"] = (timezone.now() - dt.timedelta(seconds=settings.POCARE_IDLE_LOGOUT_SECONDS + 5)).timestamp()
    session.save()
    response = client.get("/audit/")
    assert response.status_code == 302 and response.url.startswith("/login/")
    assert _events(AccountEvent.IDLE_LOGOUT, people["qp"]) == 1
    api = client.get("/api/me/")
    assert api.status_code in (401, 403)


def test_an_expired_password_must_be_changed_before_anything_else(client, login, people, settings):
    """P11-300: password ageing."""
    qp = people["qp"]
    qp.password_changed_at = timezone.now() - dt.timedelta(days=settings.POCARE_PASSWORD_MAX_AGE_DAYS + 1)
    qp.save()
    before = _events(AccountEvent.PASSWORD_SET, qp)  # the personas set their password once (tests/conftest.py)
    login("qp")
    response = client.get("/audit/")
    assert response.status_code == 302 and response.url == "/password/change/"
    new = "a much longer passphrase 2027"
    response = client.post("/password/change/", {"old_password": PASSWORD, "new_password": new, "confirm": new})
    assert response.status_code == 302
    assert client.get("/audit/").status_code == 200
    assert _events(AccountEvent.PASSWORD_SET, qp) == before + 1


def test_weak_new_passwords_are_refused_with_the_field_named(client, login):
    """P11-300: password rules, explained on the field."""
    login("qp")
    response = client.post("/password/change/", {"old_password": PASSWORD, "new_password": "123", "confirm": "123"})
    assert response.status_code == 400
    assert b"too short" in response.content or b"at least 12" in response.content


def test_logout_ends_the_session_and_is_recorded(client, login, people):
    login("planner")
    client.post("/logout/")
    assert client.get("/").status_code == 302
    assert _events(AccountEvent.LOGGED_OUT, people["planner"]) == 1


def test_inspector_access_ends_at_its_expiry(client, people):
    """A11-IAM: inspectors are read-only and time-boxed."""
    inspector = people["inspector"]
    m = inspector.memberships.get()
    from pocare.accounts.models import Membership

    Membership.objects.filter(pk=m.pk).update(valid_until=timezone.now() - dt.timedelta(minutes=1))
    response = client.post("/login/", {"username": "inspector", "password": PASSWORD})
    assert response.status_code == 400 and b"no active role" in response.content
