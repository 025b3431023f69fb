"""Electronic signatures: re-authentication, meaning, printed name, time and a binding to the
hash of what was signed."""

from __future__ import annotations

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.core.exceptions import PermissionDenied

from pocare.accounts.models import User
from pocare.ledger.events import LedgerEvent
from pocare.ledger.models import AuditReview, Event, Meaning, Signature
from pocare.ledger.signing import (
    CONTINUOUS_SESSION_KEY,
    SigningCredentials,
    SigningRefused,
    signing_needs_user_id,
)
from pocare.ledger.verify import signature_status, verify_all
from pocare.trail.services import trail_review_sign
from tests.conftest import PASSWORD
from tests.ledger.helpers import raw, write_events

pytestmark = pytest.mark.django_db


def _review(user: User, chain: str, creds: SigningCredentials, comment: str = "Reviewed") -> AuditReview:
    write_events(user, None, 1)  # something new to review on NETWORK-independent chains
    from pocare.network.models import Site

    site = Site.objects.filter(code=chain).first()
    if site is not None:
        write_events(user, site, 1)
    return trail_review_sign(actor=user, chain=chain, comment=comment, credentials=creds)


def test_a_signature_records_printed_name_meaning_time_and_record_hash(people):
    """P11-50 P11-70: the signature is bound to the SHA-256 of the record's canonical content."""
    manager = people["manager.mad"]
    review = _review(manager, "MAD", SigningCredentials(username="manager.mad", password=PASSWORD))
    sig = Signature.objects.get(record_type="ledger.AuditReview", record_id=str(review.pk))
    assert sig.signer == manager and sig.signer_printed_name == "Lucía Navarro"
    assert sig.meaning == Meaning.REVIEWED and sig.signed_at.tzinfo is not None
    from pocare.ledger.canonical import content_hash

    assert sig.record_hash == content_hash(review.signed_content())
    assert sig.event.event_type == LedgerEvent.SIGNED and sig.event.new["record_hash"] == sig.record_hash
    assert signature_status(sig) == (True, "")


def test_first_signing_in_a_session_needs_both_components_later_only_the_password(people):
    """P11-200: continuous session — user id and password first, then the password alone."""
    manager = people["manager.mad"]
    session = SessionStore()
    with pytest.raises(SigningRefused) as exc:
        _review(manager, "MAD", SigningCredentials(password=PASSWORD, session=session))
    assert exc.value.field == "username"
    _review(manager, "MAD", SigningCredentials(username="manager.mad", password=PASSWORD, session=session))
    assert session[CONTINUOUS_SESSION_KEY] == manager.pk
    second = _review(manager, "MAD", SigningCredentials(password=PASSWORD, session=session))
    assert Signature.objects.filter(record_id=str(second.pk)).get().event.new["both_components"] is False


def test_a_signing_form_asks_for_the_user_id_exactly_when_signing_needs_it(people, rf):
    """P11-200: the page's form shows the user id field outside a continuous session and at its first
    signing, for nobody signed in, and not once the person has signed with both components in it."""
    from django.contrib.auth.models import AnonymousUser

    manager = people["manager.mad"]
    request = rf.get("/")
    request.user, request.session = AnonymousUser(), SessionStore()
    assert signing_needs_user_id(request)
    request.user = manager
    assert signing_needs_user_id(request)
    _review(manager, "MAD", SigningCredentials(username="manager.mad", password=PASSWORD, session=request.session))
    assert not signing_needs_user_id(request)
    request.user = people["qa"]
    assert signing_needs_user_id(request)


def test_outside_a_continuous_session_both_components_are_needed_every_time(people):
    """P11-200: no session (API token, new session) means user id and password each time."""
    manager = people["manager.mad"]
    _review(manager, "MAD", SigningCredentials(username="manager.mad", password=PASSWORD))
    with pytest.raises(SigningRefused):
        _review(manager, "MAD", SigningCredentials(password=PASSWORD))
    with pytest.raises(SigningRefused):
        _review(manager, "MAD", SigningCredentials(password=PASSWORD, session=SessionStore()))


def test_nobody_signs_with_another_persons_user_id(people):
    """P11-100: a signature belongs to one person; another's user id is refused and recorded."""
    manager = people["manager.mad"]
    before = manager.failed_attempts
    with pytest.raises(SigningRefused):
        _review(manager, "MAD", SigningCredentials(username="qa", password=PASSWORD))
    manager.refresh_from_db()
    assert manager.failed_attempts == before + 1


def test_a_wrong_password_is_a_recorded_failed_attempt_toward_lockout(people, settings):
    """P11-300 P11-200: a wrong signing password is recorded and counts toward lockout."""
    settings.POCARE_LOCKOUT_THRESHOLD = 3
    manager = people["manager.mad"]
    for attempt in range(1, 4):
        with pytest.raises(SigningRefused):
            _review(manager, "MAD", SigningCredentials(username="manager.mad", password="wrong"))
        manager.refresh_from_db()
        assert manager.failed_attempts == attempt
    assert manager.locked_at is not None
    failures = Event.objects.filter(event_type=LedgerEvent.SIGNING_FAILED, object_id=str(manager.pk))
    assert failures.count() == 3
    with pytest.raises(PermissionDenied):  # a locked person holds no active role until unlocked
        _review(manager, "MAD", SigningCredentials(username="manager.mad", password=PASSWORD))


def test_a_changed_record_shows_its_signature_invalid_everywhere(people, client, login):
    """P11-70: a record changed after signing makes its signature invalid in verify, API and UI."""
    from tests.conftest import drop_triggers

    qa = people["qa"]
    review = _review(qa, "CTRL", SigningCredentials(username="qa", password=PASSWORD), comment="All fine")
    sig = Signature.objects.get(record_id=str(review.pk), record_type="ledger.AuditReview")
    drop_triggers()
    raw("UPDATE ledger_auditreview SET comment = 'Nothing to see' WHERE id = %s", [review.pk])
    assert signature_status(sig) == (False, "the record changed after it was signed")
    report = verify_all()
    assert [p.signature_id for p in report.signature_problems] == [sig.pk]
    login("qa")
    api = client.get(f"/api/signatures/{sig.pk}/").json()
    assert api["valid"] is False and "changed" in api["invalid_reason"]
    page = client.get(f"/audit/reviews/{review.pk}/").content.decode()
    assert "INVALID" in page


def test_an_edited_signature_row_no_longer_matches_its_ledger_event(people):
    """P11-70: a signature cannot be transferred to another meaning or record by editing it."""
    from tests.conftest import drop_triggers

    qa = people["qa"]
    review = _review(qa, "CTRL", SigningCredentials(username="qa", password=PASSWORD))
    drop_triggers()
    raw("UPDATE ledger_signature SET meaning = 'approved' WHERE record_id = %s", [str(review.pk)])
    problems = verify_all().signature_problems
    assert problems and "differs from its ledger event" in problems[0].problem


def test_signature_manifestation_is_shown_with_the_record(people, client, login):
    """P11-50: printed name, date and time, and meaning are displayed with the signed record."""
    qa = people["qa"]
    review = _review(qa, "CTRL", SigningCredentials(username="qa", password=PASSWORD))
    sig = Signature.objects.get(record_id=str(review.pk), record_type="ledger.AuditReview")
    login("qa")
    page = client.get(f"/audit/reviews/{review.pk}/").content.decode()
    assert "Montserrat Puig" in page and "Reviewed" in page
    assert sig.signed_at.strftime("%Y-%m-%d %H:%M") in page and "UTC" in page
