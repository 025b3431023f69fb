"""Sign-in that an attacker cannot turn against the user (issue 13, P11-300, A11-IAM).

Failed sign-ins are throttled per user id *and* client address (django-axes), never by locking
the account; every refusal reads the same and costs the same; a locked account can always be
unlocked; failed *signatures* still lock, and a correct one clears the count.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time

import pytest
from axes.models import AccessAttempt
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from pocare.accounts import services
from pocare.accounts.events import AccountEvent
from pocare.accounts.models import User
from pocare.accounts.services import LOGIN_REFUSED
from pocare.ledger.models import Event
from pocare.ledger.signing import SigningCredentials, SigningRefused, signing_authenticate
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

ATTACKER, WORKSTATION = "203.0.113.66", "10.20.0.15"


def _sign_in(username: str, password: str, address: str, client: Client | None = None):  # type: ignore[no-untyped-def]
    return (client or Client()).post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def _refusal(response) -> list[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 400, response.status_code
    return list(response.context["form"].non_field_errors())


def test_ten_failed_sign_ins_from_one_address_lock_no_account_and_the_person_signs_in_from_their_own(people):
    """P11-300 A11-IAM: the attack of issue 13 (10 failures in a few seconds against both Control
    Site QA accounts) throttles the attacker's address only; QA still signs in and keeps their tokens."""
    _, key = services.token_issue(actor=None, user=people["qa"], name="LIMS", reason="feed")
    for _ in range(10):
        for username in ("qa", "qa2"):
            _sign_in(username, "guess", ATTACKER)
    for username in ("qa", "qa2"):
        person = User.objects.get(username=username)
        assert person.locked_at is None and person.failed_attempts == 0
        assert _sign_in(username, PASSWORD, WORKSTATION).status_code == 302
    assert services.token_user(key) == people["qa"]
    # The attacker's address stays throttled for that user id, even with the right password.
    assert _refusal(_sign_in("qa", PASSWORD, ATTACKER)) == [LOGIN_REFUSED]
    failures = Event.objects.filter(event_type=AccountEvent.LOGIN_FAILED)
    assert sum(e.new["ip_address"] == ATTACKER for e in failures) == 21


def test_the_throttle_ends_after_the_cool_off(people, settings):
    """A11-IAM: throttling is a pause (AXES_COOLOFF_TIME), not a lock that needs QA."""
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in("operator.mad", "guess", ATTACKER)
    assert _sign_in("operator.mad", PASSWORD, ATTACKER).status_code == 400
    AccessAttempt.objects.filter(username="operator.mad").update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - dt.timedelta(seconds=1)
    )
    assert _sign_in("operator.mad", PASSWORD, ATTACKER).status_code == 302


def test_one_address_spraying_many_user_ids_is_throttled_for_all_of_them(people, settings):
    """A11-IAM: a looser limit per address over every user id (password spraying)."""
    settings.POCARE_LOGIN_IP_FAILURE_LIMIT = 6
    for username in ("operator.mad", "operator.lis", "qc.mad", "qc.lis", "manager.mad", "manager.lis"):
        _sign_in(username, "Summer2026!", ATTACKER)
    assert _refusal(_sign_in("navigator.mad", PASSWORD, ATTACKER)) == [LOGIN_REFUSED]
    assert _sign_in("navigator.mad", PASSWORD, WORKSTATION).status_code == 302


def test_the_client_address_is_remote_addr_and_a_forged_forwarded_header_changes_nothing(people, settings):
    """A11-IAM: a forged X-Forwarded-For does not move an attacker to a fresh address (behind the
    trusted proxy, waitress itself writes the forwarded address into REMOTE_ADDR); a malformed
    address is never stored, nor a 500."""
    for n in range(settings.AXES_FAILURE_LIMIT):
        Client().post("/login/", {"username": "qc.mad", "password": "guess"},
                      REMOTE_ADDR=ATTACKER, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
    assert set(AccessAttempt.objects.filter(username="qc.mad").values_list("ip_address", flat=True)) == {ATTACKER}
    assert _sign_in("qc.mad", PASSWORD, ATTACKER).status_code == 400
    response = Client().post("/login/", {"username": "qc.gro", "password": "guess"}, REMOTE_ADDR="not-an-address")
    assert response.status_code == 400


def test_every_refused_sign_in_reads_the_same_and_the_ledger_knows_why(people, settings):
    """P11-300: no account enumeration from the message: unknown, wrong password, locked,
    deactivated and throttled answer one text; the ledger records the real reason."""
    qa = people["qa"]
    User.objects.filter(username="operator.lis").update(locked_at=timezone.now(), failed_attempts=5)
    services.user_deactivate(actor=qa, user=people["operator.gro"], reason="left")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in("qc.mil", "guess", ATTACKER)
    cases = {
        "unknown user id": ("nobody.here", PASSWORD),
        "wrong password": ("operator.mad", "guess"),
        "account locked": ("operator.lis", PASSWORD),
        "account deactivated": ("operator.gro", PASSWORD),
        "throttled: too many failures for this user id from this address": ("qc.mil", PASSWORD),
    }
    answers = {}
    for detail, (username, password) in cases.items():
        before = Event.objects.count()
        response = _sign_in(username, password, ATTACKER)
        answers[detail] = (response.status_code, _refusal(response))
        assert Event.objects.filter(event_type=AccountEvent.LOGIN_FAILED).order_by("-pk").first().new["detail"] == detail
        assert Event.objects.count() == before + 1
    assert all(a == (400, [LOGIN_REFUSED]) for a in answers.values()), answers


def test_refused_sign_ins_take_the_same_time_whether_the_user_id_exists_or_not(people, settings):
    """P11-300: no account enumeration from timing. With the production hasher (Argon2), an unknown
    user id, a wrong password, a locked account and a throttled pair each run Argon2 once (before:
    20 ms against 400 ms, a factor of 20). The medians agree within a factor of 2.5 (generous: the
    test machine is shared)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]
    settings.AXES_FAILURE_LIMIT = 3
    settings.POCARE_LOGIN_IP_FAILURE_LIMIT = 10_000
    for username in ("operator.mad", "operator.lis", "qc.mad"):
        person = User.objects.get(username=username)
        person.set_password(PASSWORD)
        assert person.password.startswith("argon2")
        person.save()
    User.objects.filter(username="operator.lis").update(locked_at=timezone.now())
    for _ in range(3):
        _sign_in("qc.mad", "guess", ATTACKER)
    cases = {"unknown": "no.such.person", "wrong password": "operator.mad", "locked": "operator.lis",
             "throttled": "qc.mad"}
    times: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for round_ in range(9):
        for name in names[round_ % 4:] + names[: round_ % 4]:  # each case in each position in turn
            username = cases[name]
            address = ATTACKER if name == "throttled" else f"192.0.2.{round_ * 4 + names.index(name)}"
            start = time.perf_counter()
            response = _sign_in(username, "guess", address)
            times[name].append(time.perf_counter() - start)
            assert response.status_code == 400
    medians = {name: statistics.median(values) for name, values in times.items()}
    print("median seconds per refused sign-in:", {k: round(v, 4) for k, v in medians.items()})
    assert max(medians.values()) < 2.5 * min(medians.values()), medians


# --- the account lock: signatures only, and always a way out ----------------------------------


def test_failed_signatures_still_lock_and_a_correct_signature_clears_the_count(people, settings,
                                                                               django_capture_on_commit_callbacks):
    """P11-300 P11-200: a signed-in person re-entering a wrong password counts toward the lock;
    a correct signature ends the run, so only consecutive failures lock; QA is told of a lock."""
    from django.core import mail

    settings.POCARE_LOCKOUT_THRESHOLD = 3
    manager = people["manager.mad"]

    def sign(password: str) -> None:
        signing_authenticate(actor=manager, credentials=SigningCredentials(username="manager.mad", password=password))

    for _ in range(2):
        with pytest.raises(SigningRefused):
            sign("wrong")
    sign(PASSWORD)
    manager.refresh_from_db()
    assert manager.failed_attempts == 0
    cleared = Event.objects.get(event_type=AccountEvent.FAILURES_CLEARED, object_id=str(manager.pk))
    assert cleared.old == {"failed_attempts": 2} and cleared.new == {"failed_attempts": 0}
    for _ in range(2):
        with pytest.raises(SigningRefused):
            sign("wrong")
    manager.refresh_from_db()
    assert manager.locked_at is None
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(SigningRefused, match="locked"):
        sign("wrong")
    manager.refresh_from_db()
    assert manager.locked_at is not None
    assert any("manager.mad" in m.subject and "qa@demo.pocare.invalid" in m.to for m in mail.outbox)


def test_another_control_site_qa_unlocks_nobody_unlocks_themselves_and_the_throttle_is_cleared(people):
    """P11-300: unlocking is a second person's act, recorded with a reason; it also ends the
    sign-in throttle for that user id."""
    qa, qa2 = people["qa"], people["qa2"]
    User.objects.filter(pk=qa.pk).update(locked_at=timezone.now(), failed_attempts=5)
    for _ in range(5):
        _sign_in("qa", "guess", ATTACKER)
    qa.refresh_from_db()
    with pytest.raises(ValidationError, match="another Control Site QA"):
        services.user_unlock(actor=qa, user=qa, reason="me")
    with pytest.raises(PermissionDenied):
        services.user_unlock(actor=people["manager.mad"], user=qa, reason="helping")
    services.user_unlock(actor=qa2, user=qa, reason="identity confirmed by phone")
    qa.refresh_from_db()
    assert qa.locked_at is None and not AccessAttempt.objects.filter(username="qa").exists()
    event = Event.objects.filter(event_type=AccountEvent.USER_UNLOCKED, object_id=str(qa.pk)).get()
    assert event.actor_username == "qa2" and event.reason == "identity confirmed by phone"
    assert _sign_in("qa", PASSWORD, ATTACKER).status_code == 302


def test_the_unlock_command_works_when_no_control_site_qa_is_left_and_is_audited(people):
    """P11-300: both QA accounts locked (issue 13); the administrator's `pocare account unlock`
    unlocks with a reason, recorded as cli:account-unlock."""
    User.objects.filter(username__in=["qa", "qa2"]).update(locked_at=timezone.now(), failed_attempts=5)
    for _ in range(5):
        _sign_in("qa", "guess", ATTACKER)
    with pytest.raises(CommandError):
        call_command("account", "unlock", "qa", "--reason", " ")
    with pytest.raises(CommandError, match="No active user"):
        call_command("account", "unlock", "nobody", "--reason", "x")
    call_command("account", "unlock", "qa", "--reason", "both QA locked; identity checked in person")
    qa = User.objects.get(username="qa")
    assert qa.locked_at is None and not AccessAttempt.objects.filter(username="qa").exists()
    event = Event.objects.get(event_type=AccountEvent.USER_UNLOCKED, object_id=str(qa.pk))
    assert event.actor_id is None and event.actor_username == "cli:account-unlock"
    assert event.reason == "both QA locked; identity checked in person"
    assert _sign_in("qa", PASSWORD, ATTACKER).status_code == 302


# --- passwords ---------------------------------------------------------------------------------


def test_none_of_the_last_five_passwords_comes_back(people, client, login):
    """P11-300: password history — the current and the four before it are refused, on the field."""
    op = people["operator.mil"]
    chain = [f"a fresh passphrase number {n}" for n in range(1, 5)]
    current = PASSWORD
    for new in chain:
        services.password_set(user=op, old_password=current, new_password=new)
        current = new
    for old in [PASSWORD, *chain[:-1]]:
        with pytest.raises(ValidationError) as exc:
            services.password_set(user=op, old_password=current, new_password=old)
        assert "new_password" in exc.value.message_dict and "last 5" in exc.value.message_dict["new_password"][0]
    login("operator.mil", current)
    response = client.post("/password/change/", {"old_password": current, "new_password": PASSWORD,
                                                 "confirm": PASSWORD})
    assert response.status_code == 400 and "last 5" in str(response.context["form"].errors["new_password"])
    services.password_set(user=op, old_password=current, new_password="a fresh passphrase number 5")
    services.password_set(user=op, old_password="a fresh passphrase number 5", new_password=PASSWORD)  # 6th back


def test_an_expired_password_is_refused_at_the_api_as_on_the_pages(client, login, people, settings):
    """P11-300: a browser session with an expired password changes nothing over /api/ either
    (issue 13: a deviation was classified); a bearer token is governed by its own expiry."""
    qa = people["qa"]
    _, key = services.token_issue(actor=None, user=qa, name="LIMS", reason="feed")
    login("qa")
    User.objects.filter(pk=qa.pk).update(
        password_changed_at=timezone.now() - dt.timedelta(days=settings.POCARE_PASSWORD_MAX_AGE_DAYS + 1)
    )
    before = Event.objects.count()
    for response in (client.get("/api/me/"),
                     client.post("/api/tokens/", {"user": "qa", "name": "x", "reason": "x"})):
        assert response.status_code == 403
        assert response.json()["detail"].startswith("Your password has expired; set a new one at /password/change/")
    assert Event.objects.count() == before
    assert Client().get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200
    User.objects.filter(pk=qa.pk).update(must_change_password=True, password_changed_at=timezone.now())
    assert client.get("/api/me/").status_code == 403


# --- tokens ------------------------------------------------------------------------------------


def _api(key: str, method: str = "get", path: str = "/api/me/", address: str = WORKSTATION, **data):  # type: ignore[no-untyped-def]
    return getattr(Client(), method)(path, data, HTTP_AUTHORIZATION=f"Bearer {key}", REMOTE_ADDR=address)


def test_tokens_expire_after_90_days_by_default_and_say_so(people, settings):
    """A11-IAM: a token has an end (default 90 days, at most POCARE_TOKEN_MAX_AGE_DAYS); an expired
    or revoked token gets 401 saying when."""
    token, key = services.token_issue(actor=None, user=people["operator.mad"], name="Prodigy", reason="feed")
    assert abs(token.expires_at - (token.created_at + dt.timedelta(days=90))) < dt.timedelta(seconds=1)
    with pytest.raises(ValidationError) as exc:
        services.token_issue(actor=None, user=people["operator.mad"], name="x", reason="x",
                             days=settings.POCARE_TOKEN_MAX_AGE_DAYS + 1)
    assert "days" in exc.value.message_dict and "365" in exc.value.message_dict["days"][0]
    assert _api(key).status_code == 200
    token.expires_at = timezone.now() - dt.timedelta(minutes=1)
    type(token).objects.filter(pk=token.pk).update(expires_at=token.expires_at)
    response = _api(key)
    assert response.status_code == 401
    assert response.json()["detail"] == f"This token expired on {token.expires_at:%Y-%m-%d %H:%M} UTC; ask for a new one."

    token2, key2 = services.token_issue(actor=None, user=people["operator.mad"], name="Prodigy 2", reason="feed")
    services.token_revoke(actor=people["qa"], token=token2, reason="device retired")
    response = _api(key2)
    assert response.status_code == 401 and response.json()["detail"].startswith("This token was revoked on ")


def test_a_read_only_token_reads_and_is_refused_every_change(people):
    """A11-IAM: scope 'read' — GET answers, an unsafe method is refused with a message saying so,
    and nothing is recorded."""
    _, key = services.token_issue(actor=None, user=people["qa"], name="dashboard", reason="reporting", scope="read")
    assert _api(key, path="/api/tokens/").status_code == 200
    before = Event.objects.count()
    response = _api(key, "post", "/api/tokens/", user="qa", name="x", reason="x")
    assert response.status_code == 403 and "read-only" in response.json()["detail"]
    assert Event.objects.count() == before


def test_a_tokens_last_use_time_and_address_are_kept_written_at_most_once_a_minute(people, django_assert_num_queries):
    """A11-IAM: owner and QA see whether, when and from where a token is used."""
    token, key = services.token_issue(actor=None, user=people["operator.lis"], name="Prodigy", reason="feed")
    assert token.last_used_at is None
    _api(key, address="10.9.8.7")
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None and token.last_used_ip == "10.9.8.7"
    _api(key, address="10.9.8.7")
    token.refresh_from_db()
    assert token.last_used_at == first  # within the minute: not written again
    _api(key, address="10.9.8.8")
    token.refresh_from_db()
    assert token.last_used_ip == "10.9.8.8"  # a new address is written at once


def test_the_token_command_takes_a_scope_and_a_life(people, capsys):
    """A11-IAM: `pocare token issue USER NAME --scope read --days 30 --reason …`."""
    call_command("token", "issue", "operator.mad", "Reader", "--scope", "read", "--days", "30", "--reason", "x")
    token = people["operator.mad"].api_tokens.get(name="Reader")
    assert token.scope == "read" and (token.expires_at - token.created_at).days == 30
    with pytest.raises(CommandError, match="365"):
        call_command("token", "issue", "operator.mad", "Long", "--days", "400", "--reason", "x")


def test_owners_list_and_revoke_their_own_tokens_and_control_site_qa_sees_everyones(client, login, people):
    """A11-IAM: "My tokens" — name, prefix, scope, created, expires, last use; revoke with a reason."""
    own, _ = services.token_issue(actor=None, user=people["operator.mad"], name="Prodigy MAD", reason="x")
    other, _ = services.token_issue(actor=None, user=people["operator.lis"], name="Prodigy LIS", reason="x")
    login("operator.mad")
    page = client.get("/tokens/").content.decode()
    assert "Prodigy MAD" in page and own.prefix in page and "Prodigy LIS" not in page
    assert client.post("/tokens/", {"token": other.pk, "reason": "not mine"}).status_code == 404
    response = client.post("/tokens/", {"token": own.pk, "reason": ""})
    assert response.status_code == 400
    own.refresh_from_db()
    assert own.revoked_at is None
    assert client.post("/tokens/", {"token": own.pk, "reason": "device retired"}).status_code == 302
    own.refresh_from_db()
    assert own.revoked_at is not None
    assert Event.objects.get(event_type=AccountEvent.TOKEN_REVOKED, object_id=str(own.pk)).reason == "device retired"
    with pytest.raises(PermissionDenied):
        services.token_revoke(actor=people["operator.mad"], token=other, reason="x")
    client.post("/logout/")
    login("qa")
    page = client.get("/tokens/").content.decode()
    assert "Prodigy MAD" in page and "Prodigy LIS" in page and "operator.lis" in page


# --- inspectors ----------------------------------------------------------------------------------


def test_inspector_access_is_capped_at_90_days_and_its_end_is_shown(people, client, login, settings):
    """A11-IAM: an inspector's access ends within POCARE_INSPECTOR_MAX_DAYS (issue 13: year 9999
    was accepted), and the inspector sees when."""
    from pocare.accounts.roles import Role
    from pocare.network.models import Site

    ctrl = Site.objects.get(code="CTRL")
    with pytest.raises(ValidationError) as exc:
        services.membership_grant(actor=people["qa"], user=people["planner"], role=Role.INSPECTOR, site=ctrl,
                                  reason="audit", valid_until=dt.datetime(9999, 12, 31, tzinfo=dt.UTC))
    message = exc.value.message_dict["valid_until"][0]
    latest = timezone.now() + dt.timedelta(days=settings.POCARE_INSPECTOR_MAX_DAYS)
    assert "at most 90 days" in message and f"{latest:%Y-%m-%d}" in message
    login("inspector")
    ends = people["inspector"].memberships.get().valid_until
    assert f"Access ends {ends:%Y-%m-%d}" in client.get("/").content.decode()


def test_owners_list_and_revoke_their_own_tokens_over_the_api_too(client, login, people):
    """A11-IAM: GET /api/tokens/ lists the caller's own tokens (QA: everyone's) with expiry, scope
    and last use; the owner revokes their own; another person's token does not exist for them."""
    own, key = services.token_issue(actor=None, user=people["operator.mad"], name="Prodigy MAD", reason="x")
    other, _ = services.token_issue(actor=None, user=people["operator.lis"], name="Prodigy LIS", reason="x")
    _api(key, address="10.1.2.3")
    login("operator.mad")
    rows = client.get("/api/tokens/").json()["results"]
    assert [r["name"] for r in rows] == ["Prodigy MAD"]
    assert rows[0]["scope"] == "write" and rows[0]["expires_at"] and rows[0]["last_used_ip"] == "10.1.2.3"
    assert client.post(f"/api/tokens/{other.pk}/revoke/", {"reason": "x"}).status_code == 404
    assert client.post("/api/tokens/", {"user": "operator.mad", "name": "x", "reason": "x"}).status_code == 403
    response = client.post(f"/api/tokens/{own.pk}/revoke/", {"reason": "lost the device"})
    assert response.status_code == 200 and response.json()["revoked_at"]
    again = client.post(f"/api/tokens/{own.pk}/revoke/", {"reason": "again"})
    assert again.status_code == 400 and "already revoked" in str(again.json())


def test_control_site_qa_sees_where_sign_in_is_paused_and_can_lift_the_pause(client, login, people, settings):
    """P11-300: the person page shows the addresses a person's sign-in is paused from; QA's unlock
    (with a reason) lifts it at once."""
    op = people["operator.mad"]
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in("operator.mad", "guess", ATTACKER)
    login("qa")
    page = client.get(f"/people/{op.pk}/").content.decode()
    assert "Sign-in paused" in page and ATTACKER in page and "Unlock…" in page
    assert client.post(f"/people/{op.pk}/", {"action": "unlock", "reason": "travelling; called from the airport"}).status_code == 302
    assert not AccessAttempt.objects.filter(username="operator.mad").exists()
    assert "Sign-in paused" not in client.get(f"/people/{op.pk}/").content.decode()
    assert _sign_in("operator.mad", PASSWORD, ATTACKER).status_code == 302
