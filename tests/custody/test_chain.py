"""Therapy orders, collections and the hand-offs of the chain of identity, through the services."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from pocare.custody import isbt, services
from pocare.custody.events import CustodyEvent
from pocare.custody.models import Handoff, HandoffKind, HandoffOutcome, OrderStatus
from pocare.ledger.models import Event
from pocare.quality.models import Deviation, DeviationKind
from tests.custody.helpers import (
    accepted,
    certify,
    collect,
    completed_batch,
    order,
    scan,
    site,
    to_manufacture,
    user,
)

pytestmark = pytest.mark.django_db

K = HandoffKind


def test_physician_or_navigator_orders_and_the_site_manager_accepts_with_a_coi(people):
    """ISBT-COI ATMP-TRACE: the order is created by the treating site; acceptance assigns one COI of
    the documented shape (manufacturing facility, year, sequence, check) and a second acceptance is
    refused — the COI never changes."""
    o = order()
    assert o.status == OrderStatus.REQUESTED and o.coi is None
    assert Event.objects.filter(event_type=CustodyEvent.ORDER_CREATED, object_id=str(o.pk)).exists()
    with pytest.raises(PermissionDenied):
        services.therapy_order_accept(actor=people["operator.mad"], order=o, reason="x")
    with pytest.raises(PermissionDenied):
        services.therapy_order_accept(actor=people["manager.lis"], order=o, reason="x")
    services.therapy_order_accept(actor=people["manager.mad"], order=o, reason="Slot on Monday")
    o.refresh_from_db()
    assert o.status == OrderStatus.ACCEPTED and isbt.coi_validate(o.coi) == o.coi
    assert o.coi[1:6] == site("MAD").facility_id
    first = o.coi
    with pytest.raises(ValidationError) as exc:
        services.therapy_order_accept(actor=people["manager.mad"], order=o, reason="again")
    assert "never reassigned" in str(exc.value)
    o.refresh_from_db()
    assert o.coi == first
    second = accepted(recipient="PT-0002")
    assert int(second.coi[8:14]) == int(first[8:14]) + 1
    nav = services.therapy_order_create(
        actor=people["navigator.mad"], site=site("MAD"), treating_site=site("MAD"), product=o.product,
        recipient_id="PT-3", recipient_weight_kg=Decimal(60), indication="B-ALL", reason="referral")
    assert nav.ordered_by == people["navigator.mad"]


@pytest.mark.parametrize("username", ["operator.mad", "inspector", "qa", "physician.lis"])
def test_only_the_treating_sites_physician_or_navigator_orders(people, username):
    """P11-10g: ordering is for the treating site's physicians and navigators; inspectors never write."""
    from tests.custody.helpers import effective_at

    version = effective_at()
    with pytest.raises(PermissionDenied):
        services.therapy_order_create(actor=people[username], site=site("MAD"), treating_site=site("MAD"),
                                      product=version.product, recipient_id="PT-9", recipient_weight_kg=Decimal(70),
                                      indication="x", reason="x")


def test_order_input_errors_name_the_field(people):
    """ATMP-TRACE: a user's mistake is answered on the field it concerns."""
    from tests.custody.helpers import effective_at

    version = effective_at()
    base = {"actor": people["physician.mad"], "site": site("MAD"), "treating_site": site("MAD"),
            "product": version.product, "recipient_id": "PT-1", "recipient_weight_kg": Decimal(70),
            "indication": "x", "reason": "x"}
    for field, value in (("recipient_id", " "), ("recipient_weight_kg", Decimal(0)), ("reason", ""),
                         ("site", site("CTRL"))):
        with pytest.raises(ValidationError) as exc:
            services.therapy_order_create(**{**base, field: value})
        assert field in exc.value.message_dict


def test_collection_gets_a_din_from_the_collection_sites_facility(people):
    """ISBT-DIN ATMP-SM ISBT-COI: a collection (only for an order with its COI) records the site,
    dates, autologous and donor tests, and gets facility + year of the end + next sequence + check."""
    with pytest.raises(ValidationError, match="accepted order"):
        collect(order(recipient="PT-early"))
    o = accepted("MAD", "LIS")
    c = collect(o)
    assert c.collection_site == site("LIS") and c.din.startswith(site("LIS").facility_id)
    year = c.collection_ended_at.astimezone(site("LIS").tz).year % 100
    assert c.din[5:7] == f"{year:02d}"
    assert c.check_character == isbt.din_check_character(c.din)
    assert c.autologous and c.donor_tests == {"HIV": "negative", "HBsAg": "negative"}
    assert c.expires_at == c.collection_ended_at + services.APHERESIS_STABILITY
    c2 = collect(o)
    assert int(c2.din[7:]) == int(c.din[7:]) + 1
    ev = Event.objects.get(event_type=CustodyEvent.COLLECTION_RECORDED, object_id=str(c.pk))
    assert c.din in ev.new_values and o.coi in ev.new_values


def test_collection_times_are_checked(people):
    """ATMP-SM: the end of collection follows its start and is not in the future."""
    o = accepted()
    now = timezone.now()
    for start, end in ((now - dt.timedelta(hours=1), now - dt.timedelta(hours=2)),
                       (now, now + dt.timedelta(hours=2))):
        with pytest.raises(ValidationError) as exc:
            services.collection_record(actor=people["physician.mad"], order=o, collection_started_at=start,
                                       collection_ended_at=end, volume_ml=Decimal(200), donor_tests={"HIV": "neg"},
                                       reason="x")
        assert "collection_ended_at" in exc.value.message_dict


def test_handoffs_are_refused_out_of_order_and_allowed_in_order(people):
    """P11-10f ATMP-TRACE: each hand-off comes after the previous one; skipping one is refused
    with nothing stored; the full chain through cryopreservation and thaw to infusion is accepted,
    and the order moves to in manufacture, dispatched, infused. Dispatch to the hospital waits for the
    QP's certification (ATMP-REL)."""
    o = accepted()
    c = collect(o)
    with pytest.raises(ValidationError) as exc:
        scan(o, K.RECEIPT_AT_SITE, c.din, c)
    assert "kind" in exc.value.message_dict and "after dispatch" in str(exc.value)
    assert not Handoff.objects.filter(order=o).exists()
    to_manufacture(o, c)
    o.refresh_from_db()
    assert o.status == OrderStatus.IN_MANUFACTURE
    with pytest.raises(ValidationError, match="only for a cryopreserved product"):
        scan(o, K.THAW, o.coi)
    scan(o, K.CRYOPRESERVATION, o.coi)
    with pytest.raises(ValidationError, match="only one of"):
        scan(o, K.FRESH_HOLD, o.coi)
    with pytest.raises(ValidationError, match="batch is completed"):
        scan(o, K.DISPATCH_TO_HOSPITAL, o.coi)
    batch = completed_batch(o, c)
    with pytest.raises(ValidationError, match="certified for release by the QP"):
        scan(o, K.DISPATCH_TO_HOSPITAL, o.coi)  # ATMP-REL: completed is not enough
    certify(batch)
    scan(o, K.DISPATCH_TO_HOSPITAL, isbt.coi_printed(o.coi))
    o.refresh_from_db()
    assert o.status == OrderStatus.DISPATCHED
    scan(o, K.RECEIPT_AT_HOSPITAL, o.coi)
    with pytest.raises(ValidationError, match="after thaw"):
        scan(o, K.INFUSION, o.coi)
    scan(o, K.THAW, o.coi)
    h = scan(o, K.INFUSION, o.coi, location="Haematology ward, bed 4")
    o.refresh_from_db()
    assert o.status == OrderStatus.INFUSED
    assert h.time_zone == "Europe/Madrid" and h.expected_identifier == o.coi and h.performed_by_name
    kinds = list(o.handoffs.values_list("kind", flat=True))
    assert kinds == [K.COLLECTION, K.DISPATCH_TO_SITE, K.RECEIPT_AT_SITE, K.MANUFACTURE_START, K.CRYOPRESERVATION,
                     K.DISPATCH_TO_HOSPITAL, K.RECEIPT_AT_HOSPITAL, K.THAW, K.INFUSION]
    assert Event.objects.filter(event_type=CustodyEvent.HANDOFF_COMPLETED).count() == 9


def test_fresh_product_goes_to_infusion_without_thaw(people):
    """P11-10f: after a fresh hold there is no thaw; infusion follows receipt at the hospital."""
    o = accepted()
    c = collect(o)
    to_manufacture(o, c)
    scan(o, K.FRESH_HOLD, o.coi)
    certify(completed_batch(o, c))
    scan(o, K.DISPATCH_TO_HOSPITAL, o.coi)
    scan(o, K.RECEIPT_AT_HOSPITAL, o.coi)
    with pytest.raises(ValidationError):
        scan(o, K.THAW, o.coi)
    scan(o, K.INFUSION, o.coi)


def test_a_handoff_happens_where_it_belongs_and_by_people_of_that_place(people):
    """P11-10g ATMP-TRACE: receipt at the POCare site is recorded at the manufacturing site by its
    people; the treating hospital's people cannot record it there."""
    o = accepted("MAD", "LIS")
    c = collect(o)
    scan(o, K.COLLECTION, c.din, c)
    with pytest.raises(ValidationError) as exc:
        scan(o, K.DISPATCH_TO_SITE, c.din, c, site=site("MAD"), who="operator.mad")
    assert "site" in exc.value.message_dict
    scan(o, K.DISPATCH_TO_SITE, c.din, c)
    with pytest.raises(PermissionDenied):
        scan(o, K.RECEIPT_AT_SITE, c.din, c, who="physician.lis")
    with pytest.raises(PermissionDenied):
        scan(o, K.RECEIPT_AT_SITE, c.din, c, who="inspector")
    scan(o, K.RECEIPT_AT_SITE, c.din, c, who="operator.mad")


def test_a_mismatch_blocks_keeps_the_attempt_and_opens_a_deviation(people):
    """ATMP-TRACE ISBT-DIN ISBT-COI DI-ALCOA: another patient's bag is scanned — the hand-off is
    blocked, the attempt is kept (expected vs presented) with a custody deviation and a ledger
    event, the error names presented_identifier; the right scan then completes it."""
    o = accepted()
    c = collect(o)
    other = collect(accepted(recipient="PT-other"))
    with pytest.raises(services.HandoffBlocked) as exc:
        scan(o, K.COLLECTION, other.din_printed, c)
    assert "presented_identifier" in exc.value.message_dict
    message = exc.value.message_dict["presented_identifier"][0]
    assert c.din in message and other.din_printed in message and exc.value.deviation.reference in message
    blocked = Handoff.objects.get(order=o, outcome=HandoffOutcome.BLOCKED)
    assert blocked.expected_identifier == c.din and blocked.presented_identifier == other.din_printed
    deviation = Deviation.objects.get(pk=blocked.deviation_id)
    assert deviation.kind == DeviationKind.CUSTODY and deviation.order == o
    assert deviation.source_type == "custody.Handoff" and deviation.source_id == str(blocked.pk)
    assert Event.objects.filter(event_type=CustodyEvent.HANDOFF_BLOCKED, object_id=str(blocked.pk)).exists()
    # a wrong check character is not the bag's DIN either
    wrong = "0" if c.check_character != "0" else "1"
    with pytest.raises(services.HandoffBlocked, match="Wrong check character"):
        scan(o, K.COLLECTION, c.din + wrong, c)
    scan(o, K.COLLECTION, f"={c.din}{c.flags}", c)
    assert o.handoffs.filter(outcome=HandoffOutcome.COMPLETED).count() == 1
    assert o.handoffs.filter(outcome=HandoffOutcome.BLOCKED).count() == 2


def test_product_handoffs_expect_the_coi(people):
    """ISBT-COI: from the first product container on, the scan must show the order's COI; a DIN or
    another order's COI is blocked."""
    o = accepted()
    c = collect(o)
    to_manufacture(o, c)
    another = accepted(recipient="PT-b")
    for wrong in (c.din, another.coi):
        with pytest.raises(services.HandoffBlocked):
            scan(o, K.CRYOPRESERVATION, wrong)
    assert scan(o, K.CRYOPRESERVATION, o.coi.lower()).outcome == HandoffOutcome.COMPLETED


def test_inside_an_outer_transaction_the_blocked_attempt_is_kept_when_caught(people):
    """ATMP-TRACE: the batch start calls handoff_record inside its own transaction; catching
    HandoffBlocked there keeps the blocked hand-off and its deviation."""
    o = accepted()
    c = collect(o)
    for kind in (K.COLLECTION, K.DISPATCH_TO_SITE, K.RECEIPT_AT_SITE):
        scan(o, kind, c.din, c)
    check = services.handoff_check(order=o, kind=K.MANUFACTURE_START, presented_identifier="P9999 26 000001",
                                   collection=c)
    assert not check.matches and check.expected == c.din
    with transaction.atomic():
        try:
            scan(o, K.MANUFACTURE_START, "P999926000001", c)
        except services.HandoffBlocked as exc:
            reference = exc.deviation.reference
    assert Deviation.objects.filter(reference=reference).exists()
    assert o.handoffs.filter(kind=K.MANUFACTURE_START, outcome=HandoffOutcome.BLOCKED).exists()


@pytest.mark.usefixtures("tx_db")
def test_the_blocked_attempt_is_committed_although_an_error_is_reported():
    """ATMP-TRACE DI-ALCOA: on a real, committing database, the blocked hand-off and its deviation
    are committed before HandoffBlocked reaches the caller."""
    from django.db import connection

    o = accepted()
    c = collect(o)
    assert not connection.in_atomic_block
    with pytest.raises(services.HandoffBlocked) as exc:
        scan(o, K.COLLECTION, "P100299999999", c)
    assert not connection.in_atomic_block
    assert Handoff.objects.filter(pk=exc.value.handoff.pk, outcome=HandoffOutcome.BLOCKED).exists()
    assert Deviation.objects.filter(reference=exc.value.deviation.reference).exists()


def test_each_handoff_is_recorded_where_it_happens(people):
    """ATMP-TRACE: one rule, used by the scan page, the API and the service, says where a hand-off
    happens: the collection and its dispatch at the collection's site (the order's only collection
    when none is named), receipt to dispatch to the hospital at the manufacturing site, the rest at
    the treating site; a scan recorded elsewhere is refused."""
    o = accepted("MAD", "LIS")
    ended = timezone.now() - dt.timedelta(hours=1)
    c = services.collection_record(
        actor=user("physician.muc"), order=o, collection_site=site("MUC"), collection_started_at=ended
        - dt.timedelta(hours=4), collection_ended_at=ended, volume_ml=Decimal("250"),
        donor_tests={"HIV": "negative"}, reason="Apheresis at the regional centre")
    where = {str(k): services.handoff_site(order=o, kind=k, collection=c).code for k in K}
    assert where == {"collection": "MUC", "dispatch_to_site": "MUC", "receipt_at_site": "MAD",
                     "manufacture_start": "MAD", "cryopreservation": "MAD", "fresh_hold": "MAD",
                     "dispatch_to_hospital": "MAD", "receipt_at_hospital": "LIS", "thaw": "LIS", "infusion": "LIS"}
    assert services.handoff_site(order=o, kind=K.DISPATCH_TO_SITE).code == "MUC"
    with pytest.raises(ValidationError, match="happens at"):
        scan(o, K.COLLECTION, c.din, c, site=site("LIS"), who="physician.lis")


def test_status_change_events_and_user_names(people):
    """DI-ALCOA: each move of the order is a ledger event with the old and new status."""
    o = accepted()
    c = collect(o)
    to_manufacture(o, c)
    ev = Event.objects.filter(event_type=CustodyEvent.ORDER_STATUS_CHANGED, object_id=str(o.pk)).get()
    assert '"in_manufacture"' in ev.new_values and '"accepted"' in ev.old_values
    assert ev.actor == user("operator.mad")
