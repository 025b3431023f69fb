"""Managing people: nobody sets another's password, nobody is deleted (P11-300, A11-IAM)."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from pocare.accounts import services
from pocare.accounts.models import User
from pocare.accounts.roles import Role
from pocare.network.models import Site

pytestmark = pytest.mark.django_db


def test_a_new_person_sets_their_own_password_from_an_emailed_link(client, people):
    """P11-300 A11-IAM: no administrator path sets a known password for another person."""
    qa = people["qa"]
    with pytest.raises(PermissionDenied):
        services.user_create(actor=qa, username="new.op", printed_name="New Operator", email="n@x.org",
                             reason="hire", initial_password="known-to-qa-123456")
    with django_capture_on_commit():
        person = services.user_create(actor=qa, username="new.op", printed_name="New Operator",
                                      email="n@x.org", reason="hire")
    assert not person.has_usable_password()
    services.membership_grant(actor=qa, user=person, role=Role.OPERATOR, site=Site.objects.get(code="MAD"),
                              reason="hire")
    link = re.search(r"/password/set/\S+/", mail.outbox[-1].body).group(0)
    new = "my own secret passphrase 1"
    assert client.post(link, {"new_password": new, "confirm": new}).status_code == 302
    assert client.post("/login/", {"username": "new.op", "password": new}).status_code == 302


def django_capture_on_commit():  # type: ignore[no-untyped-def]
    from django.test import TestCase

    return TestCase.captureOnCommitCallbacks(execute=True)


def test_a_reset_invalidates_the_password_and_revokes_tokens(people):
    """P11-300: deauthorising lost credentials."""
    qa, op = people["qa"], people["operator.lis"]
    _, key = services.token_issue(actor=qa, user=op, name="Prodigy #7", reason="device feed")
    with django_capture_on_commit():
        services.password_reset_issue(actor=qa, user=op, reason="lost badge")
    op.refresh_from_db()
    assert not op.has_usable_password() and op.must_change_password
    assert services.token_user(key) is None
    assert "set your POCare password" in mail.outbox[-1].subject.lower() or mail.outbox[-1].to == [op.email]


def test_people_are_deactivated_never_deleted(people):
    """A11-IAM P11-100: records stay attributable; a user id is never reused."""
    qa, op = people["qa"], people["operator.gro"]
    with pytest.raises(PermissionError):
        op.delete()
    with pytest.raises(ValidationError):
        services.user_deactivate(actor=qa, user=op, reason="")
    services.user_deactivate(actor=qa, user=op, reason="left the hospital")
    op.refresh_from_db()
    assert not op.is_active and op.deactivated_at is not None
    with pytest.raises(ValidationError):
        services.user_create(actor=qa, username="operator.gro", printed_name="Someone Else",
                             email="s@x.org", reason="reuse")


def test_only_control_site_qa_manages_people(people):
    """P11-10g: services check authority themselves."""
    with pytest.raises(PermissionDenied):
        services.user_unlock(actor=people["manager.mad"], user=people["operator.mad"], reason="x")
    with pytest.raises(PermissionDenied):
        services.token_issue(actor=people["inspector"], user=people["inspector"], name="x", reason="x")


def test_roles_are_held_where_they_belong(people):
    """A11-IAM: Control Site roles at the Control Site; inspectors always time-boxed."""
    qa, op = people["qa"], people["operator.mad"]
    with pytest.raises(ValidationError, match="Control Site"):
        services.membership_grant(actor=qa, user=op, role=Role.QP, site=Site.objects.get(code="MAD"), reason="x")
    with pytest.raises(ValidationError, match="end date"):
        services.membership_grant(actor=qa, user=op, role=Role.INSPECTOR, site=Site.objects.get(code="CTRL"),
                                  reason="x")
    m = services.membership_grant(actor=qa, user=op, role=Role.INSPECTOR, site=Site.objects.get(code="CTRL"),
                                  reason="x", valid_until=timezone.now() + dt.timedelta(days=1))
    services.membership_revoke(actor=qa, membership=m, reason="granted by mistake")
    m.refresh_from_db()
    assert m.revoked_at is not None and m.revoked_by == qa


def test_production_hashes_passwords_with_argon2(tmp_path):
    """P11-300: Argon2id is the password hasher outside the test suite's speed-up."""
    code = ("import django,os;os.environ['DJANGO_SETTINGS_MODULE']='pocare.settings';django.setup();"
            "from django.contrib.auth.hashers import make_password;print(make_password('x').split('$')[0])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"POCARE_VAR_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "argon2"


def test_unlocked_people_can_log_in_again(client, people):
    qa, op = people["qa"], people["operator.mil"]
    User.objects.filter(pk=op.pk).update(locked_at=timezone.now(), failed_attempts=5)
    op.refresh_from_db()
    services.user_unlock(actor=qa, user=op, reason="identity confirmed")
    from tests.conftest import PASSWORD

    assert client.post("/login/", {"username": "operator.mil", "password": PASSWORD}).status_code == 302
