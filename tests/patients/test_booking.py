"""Booking a patient's chain of slots (pocare.patients.booking): slots opened within bounds, the
proposal from real capacity in a fixed number of queries, one booking of apheresis, manufacturing
unit and infusion together or nothing, the therapy order for the pseudonym, moving and cancelling
with a reason, the booked unit kept from another order's batch, and two navigators racing for the
last slot on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import close_old_connections, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from pocare.core.times import site_time
from pocare.custody.models import OrderStatus
from pocare.network.models import ManufacturingUnit, Site
from pocare.patients import booking as svc
from pocare.patients.models import Booking, BookingStatus, ClinicSlot, Referral, SlotKind, Stage


def _site(code: str) -> Site:
    return Site.objects.get(code=code)


def _unit(code: str, serial: str | None = None) -> ManufacturingUnit:
    """A qualified unit of the site (registered when the site has none)."""
    from pocare.network.services import unit_register
    from tests.custody.helpers import user

    unit = ManufacturingUnit.objects.filter(site__code=code, status="qualified").order_by("serial").first()
    if unit is not None and serial is None:
        return unit
    today = timezone.now().date()
    return unit_register(
        actor=user("qa"),
        site=_site(code),
        device_type="clinimacs_prodigy",
        serial=serial or f"BOOK-{code}",
        calibration_due=today + dt.timedelta(days=400),
        maintenance_due=today + dt.timedelta(days=400),
        reason="Booking test unit",
    )


def _tomorrow(hour: int) -> dt.datetime:
    day = timezone.now().astimezone(dt.UTC).date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def _open(people, kind: str, first: dt.datetime, days: int, *, who: str = "navigator.mad") -> list[ClinicSlot]:
    return svc.slots_open(
        actor=people[who],
        site=_site("MAD"),
        kind=kind,
        starts=first,
        ends=first + dt.timedelta(days=days - 1),
        every=24 * 60,
        duration=120,
        reason="Clinic capacity for the quarter",
    )


def _consented(referral: Referral) -> Referral:
    """The referral as the pathway leaves it once the patient has signed (the consent service is
    the pathway's; the booking checks the stage)."""
    Referral.objects.filter(pk=referral.pk).update(stage=Stage.CONSENTED)
    referral.refresh_from_db()
    return referral


@pytest.fixture
def network(db):  # type: ignore[no-untyped-def]
    """MAD and LIS able to make the product (master file effective, a qualified unit each)."""
    from tests.custody.helpers import effective_at

    for code in ("MAD", "LIS"):
        effective_at(code)
        _unit(code)


@pytest.fixture
def ready(people, referral, network):  # type: ignore[no-untyped-def]
    """A consented referral at MAD with 30 daily apheresis and 60 daily infusion slots open."""
    _open(people, SlotKind.APHERESIS, _tomorrow(8), 30)
    _open(people, SlotKind.INFUSION, _tomorrow(13), 60)
    return _consented(referral)


# --- opening slots ----------------------------------------------------------------------------------


def test_slots_open_every_day_and_reopening_keeps_what_is_open(people):
    first = _tomorrow(8)
    made = _open(people, SlotKind.APHERESIS, first, 10)
    assert [s.starts_at for s in made] == [first + dt.timedelta(days=i) for i in range(10)]
    assert all(s.ends_at - s.starts_at == dt.timedelta(hours=2) for s in made)
    again = _open(people, SlotKind.APHERESIS, first, 12)
    assert len(again) == 2
    assert ClinicSlot.objects.filter(site__code="MAD", kind=SlotKind.APHERESIS).count() == 12


@pytest.mark.parametrize(
    "change, field",
    [
        ({"ends": "2026-01-01T00:00:00+00:00", "starts": "0001-01-01T00:00:00+00:00"}, "starts"),
        ({"ends": "9999-12-31T00:00:00+00:00"}, "ends"),
        ({"starts": "2027-01-01\x0008:00"}, "starts"),
        ({"starts": "2027-01-01T08:00:00"}, "starts"),  # no time zone
        ({"every": "1" + "0" * 400}, "every"),
        ({"every": 15, "duration": 15}, "every"),  # a year of quarter hours: more than 2,000 slots
        ({"duration": 600, "every": 300}, "duration"),
        ({"duration": 0}, "duration"),
        ({"kind": "surgery"}, "kind"),
        ({"reason": ""}, "reason"),
    ],
)
def test_slots_open_refuses_implausible_input_and_stores_nothing(people, change, field):
    first = _tomorrow(8)
    kwargs = {
        "actor": people["navigator.mad"],
        "site": _site("MAD"),
        "kind": SlotKind.INFUSION,
        "starts": first,
        "ends": first + dt.timedelta(days=300),
        "every": 24 * 60,
        "duration": 60,
        "reason": "Capacity",
    }
    kwargs.update(change)
    with pytest.raises(ValidationError) as caught:
        svc.slots_open(**kwargs)
    assert field in caught.value.message_dict
    assert not ClinicSlot.objects.exists()


def test_only_the_hospitals_own_booking_roles_open_its_slots(people):
    first = _tomorrow(8)
    for who in ("navigator.lis", "operator.mad", "qa"):
        with pytest.raises(PermissionDenied):
            svc.slots_open(
                actor=people[who],
                site=_site("MAD"),
                kind=SlotKind.INFUSION,
                starts=first,
                ends=first + dt.timedelta(days=3),
                every=1440,
                duration=60,
                reason="Capacity",
            )
    assert not ClinicSlot.objects.exists()


# --- proposing --------------------------------------------------------------------------------------


def test_each_able_site_gets_its_earliest_feasible_chain_ranked_by_infusion_then_travel(people, ready):
    proposals = svc.chain_propose(user=people["navigator.mad"], referral=ready)
    by_site = {p.site.code: p for p in proposals}
    assert set(by_site) == {"MAD", "LIS"}
    mad, lis = by_site["MAD"], by_site["LIS"]
    assert mad.travel_minutes == 0 and lis.travel_minutes > 300  # Madrid–Lisbon by road
    assert proposals[0] == mad  # no travel: earlier infusion
    for p in proposals:
        hold = svc.MATERIAL_HOLD
        travel = dt.timedelta(minutes=p.travel_minutes)
        assert p.apheresis_slot.ends_at + travel <= p.manufacturing_from <= p.apheresis_slot.ends_at + hold
        assert p.released_at >= p.manufacturing_to + svc.DEFAULT_RELEASE_LEAD - dt.timedelta(hours=1)
        assert p.infusion_slot.starts_at >= p.released_at + travel
    # The first apheresis slot is the earliest possible one: the units are free.
    assert mad.apheresis_slot.starts_at == _tomorrow(8)


def test_a_user_without_booking_rights_at_the_hospital_gets_no_proposal(people, ready):
    """PAT-PRIVACY: another hospital's navigator and the manufacturing roles see nothing here."""
    for who in ("navigator.lis", "operator.mad", "qa", "physician.lis"):
        assert svc.chain_propose(user=people[who], referral=ready) == []


def test_the_proposal_reads_a_fixed_number_of_queries_however_many_sites_units_and_slots(people, ready):
    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert svc.chain_propose(user=people["navigator.mad"], referral=ready)
        return len(ctx.captured_queries)

    count()  # the permission cache is filled once
    before = count()
    from tests.custody.helpers import effective_at

    effective_at("MUC")
    for i in range(3):
        _unit("MUC", f"BOOK-MUC-{i}")
        _unit("MAD", f"BOOK-MAD-{i}")
    _open(people, SlotKind.APHERESIS, _tomorrow(17), 40)
    assert {p.site.code for p in svc.chain_propose(user=people["navigator.mad"], referral=ready)} >= {"MUC"}
    assert count() == before


# --- booking ----------------------------------------------------------------------------------------


def test_booking_takes_the_whole_chain_orders_the_therapy_for_the_pseudonym_and_moves_the_stage(people, ready):
    """PAT-PRIVACY ATMP-TRACE: the order names the pseudonym only; the ledger event holds no identifying data."""
    from pocare.ledger.models import Event

    proposal = svc.chain_propose(user=people["navigator.mad"], referral=ready)[0]
    booking = svc.chain_book(
        actor=people["navigator.mad"],
        referral=ready,
        proposal=proposal,
        reason="Earliest infusion at the home hospital",
    )
    ready.refresh_from_db()
    assert ready.stage == Stage.BOOKED
    order = ready.order
    assert (order.site, order.treating_site, order.recipient_id) == (
        proposal.site,
        _site("MAD"),
        ready.patient.pseudonym,
    )
    assert (booking.apheresis_slot, booking.infusion_slot, booking.unit) == (
        proposal.apheresis_slot,
        proposal.infusion_slot,
        proposal.unit,
    )
    event = Event.objects.get(event_type="patients.booked")
    text = str(event.new_values) + str(event.old_values) + event.object_repr
    assert ready.patient.pseudonym in text
    assert "Lucía" not in text and "1968" not in text and "Alcalá" not in text
    # The chain is taken: the next proposal at the same site uses other slots.
    following = svc.chain_propose(user=people["navigator.mad"], referral=_second_referral(people, ready))
    assert proposal.apheresis_slot not in [p.apheresis_slot for p in following]


def _referral_for(people, product, name: str) -> Referral:
    from pocare.patients.identity import Identity
    from pocare.patients.services import patient_register, referral_create

    patient = patient_register(
        actor=people["navigator.mad"],
        treating_site=_site("MAD"),
        identity=Identity(name=name, birth_date="1975-06-01", contact="", address=""),
    )
    return _consented(
        referral_create(
            actor=people["navigator.mad"],
            patient=patient,
            product=product,
            indication="Relapsed/refractory follicular lymphoma",
            weight_kg="80",
        )
    )


def _second_referral(people, referral: Referral) -> Referral:
    return _referral_for(people, referral.product, "João Silva")


def test_a_referral_not_consented_is_not_booked(people, ready):
    proposal = svc.chain_propose(user=people["navigator.mad"], referral=ready)[0]
    Referral.objects.filter(pk=ready.pk).update(stage=Stage.ELIGIBLE)
    with pytest.raises(ValidationError, match="once the patient has consented"):
        svc.chain_book(actor=people["navigator.mad"], referral=ready, proposal=proposal, reason="Book")
    assert not Booking.objects.exists()


def test_a_slot_taken_meanwhile_is_refused_with_the_next_proposal(people, ready):
    """The second navigator's proposal was computed before the first booked: refused, nothing stored,
    and told the next chain."""
    other = _second_referral(people, ready)
    stale = svc.chain_propose(user=people["navigator.mad"], referral=other)[0]
    first = svc.chain_propose(user=people["navigator.mad"], referral=ready)[0]
    assert first.apheresis_slot == stale.apheresis_slot
    svc.chain_book(actor=people["navigator.mad"], referral=ready, proposal=first, reason="Book")
    with pytest.raises(
        ValidationError, match=r"just taken: its .* went to another booking\. The next proposal: [A-Z]+: apheresis"
    ) as caught:
        svc.chain_book(actor=people["physician.mad"], referral=other, proposal=stale, reason="Book")
    assert "proposal" in caught.value.message_dict
    assert Booking.objects.count() == 1
    other.refresh_from_db()
    assert other.stage == Stage.CONSENTED and other.order is None


def test_a_posted_proposal_is_parsed_strictly(people, ready):
    proposal = svc.chain_propose(user=people["navigator.mad"], referral=ready)[0]
    parsed = svc.proposal_from_token(user=people["navigator.mad"], referral=ready, token=proposal.token)
    assert parsed == proposal
    for bad in (
        "",
        "1-2-3",
        "x" * 5000,
        "1-2-3-4-" + "9" * 400,
        "\x00",
        f"{proposal.site.pk}-{proposal.unit.pk}-{proposal.infusion_slot.pk}-{proposal.apheresis_slot.pk}-1",
    ):
        with pytest.raises(ValidationError):
            svc.proposal_from_token(user=people["navigator.mad"], referral=ready, token=bad)
    with pytest.raises(PermissionDenied):
        svc.proposal_from_token(user=people["navigator.lis"], referral=ready, token=proposal.token)


def test_an_infeasible_posted_chain_is_refused(people, ready):
    """A chain whose manufacture starts before the material can reach the unit is not booked."""
    proposal = svc.chain_propose(user=people["navigator.mad"], referral=ready)[0]
    token = proposal.token.rsplit("-", 1)[0] + f"-{int(proposal.apheresis_slot.starts_at.timestamp() // 60)}"
    early = svc.proposal_from_token(user=people["navigator.mad"], referral=ready, token=token)
    with pytest.raises(ValidationError, match="before the material reaches the site"):
        svc.chain_book(actor=people["navigator.mad"], referral=ready, proposal=early, reason="Book")
    assert not Booking.objects.exists()


def test_rebooking_moves_the_chain_with_a_reason_and_cancelling_frees_it(people, ready):
    from pocare.ledger.models import Event

    navigator = people["navigator.mad"]
    first = svc.chain_propose(user=navigator, referral=ready)[0]
    booking = svc.chain_book(actor=navigator, referral=ready, proposal=first, reason="Book")
    later = next(
        p
        for p in svc.chain_propose(
            user=navigator, referral=ready, moving=booking, after=first.apheresis_slot.ends_at + dt.timedelta(days=7)
        )
        if p.site == first.site
    )
    moved = svc.chain_rebook(actor=navigator, booking=booking, proposal=later, reason="Patient has an infection")
    booking.refresh_from_db()
    assert booking.status == BookingStatus.MOVED and booking.replaced_by == moved
    assert moved.status == BookingStatus.ACTIVE and moved.apheresis_slot.starts_at > first.apheresis_slot.starts_at
    assert Event.objects.get(event_type="patients.rebooked").reason == "Patient has an infection"
    # To another manufacturing site: the order at the first is cancelled, a new one made at the other.
    ready.refresh_from_db()
    first_order = ready.order
    other_site = next(
        p for p in svc.chain_propose(user=navigator, referral=ready, moving=moved) if p.site != first.site
    )
    elsewhere = svc.chain_rebook(actor=navigator, booking=moved, proposal=other_site, reason="Closer to home")
    ready.refresh_from_db()
    first_order.refresh_from_db()
    assert first_order.status == OrderStatus.CANCELLED
    assert ready.order != first_order and ready.order.site == other_site.site == elsewhere.manufacturing_site
    assert ready.order.status == OrderStatus.REQUESTED and ready.order.recipient_id == ready.patient.pseudonym
    assert Event.objects.filter(event_type="custody.order_status_changed", object_id=str(first_order.pk)).exists()
    with pytest.raises(ValidationError, match="moved"):
        svc.booking_cancel(actor=navigator, booking=booking, reason="Twice")
    svc.booking_cancel(actor=navigator, booking=elsewhere, reason="Patient unwell; replan")
    ready.refresh_from_db()
    assert ready.stage == Stage.CONSENTED
    assert not Booking.objects.filter(status=BookingStatus.ACTIVE).exists()
    # Booked again at the order's site, the same therapy order is used.
    again = svc.chain_book(
        actor=navigator,
        referral=ready,
        proposal=next(p for p in svc.chain_propose(user=navigator, referral=ready) if p.site == ready.order.site),
        reason="Replanned",
    )
    assert again.referral.order == ready.order


def test_booked_again_at_another_site_after_a_cancelled_chain_the_old_order_steps_aside(people, ready):
    """After a cancelled chain the referral keeps its order; a new chain at another site cancels it in the
    same transaction (the reason says where) and orders the therapy there, so every proposal is bookable."""
    from pocare.ledger.models import Event

    navigator = people["navigator.mad"]
    mad = next(p for p in svc.chain_propose(user=navigator, referral=ready) if p.site.code == "MAD")
    svc.booking_cancel(
        actor=navigator,
        booking=svc.chain_book(actor=navigator, referral=ready, proposal=mad, reason="Book"),
        reason="Patient unwell",
    )
    ready.refresh_from_db()
    first_order = ready.order
    lis = next(p for p in svc.chain_propose(user=navigator, referral=ready) if p.site.code == "LIS")
    booking = svc.chain_book(actor=navigator, referral=ready, proposal=lis, reason="Closer to the family")
    ready.refresh_from_db()
    first_order.refresh_from_db()
    assert first_order.status == OrderStatus.CANCELLED
    assert ready.order.site.code == "LIS" == booking.manufacturing_site.code and ready.stage == Stage.BOOKED
    cancelled = Event.objects.get(event_type="custody.order_status_changed", object_id=str(first_order.pk))
    assert cancelled.reason == "Booked at LIS: Closer to the family"
    assert Event.objects.filter(event_type="patients.booked").latest("pk").old["order"] == first_order.pk


def test_an_order_with_material_collected_is_not_cancelled(people, referral):
    """ATMP-TRACE: once material exists, the order stays: cancelling it is refused and changes nothing;
    a manufacturing role may not cancel the hospital's order either."""
    from django.core.exceptions import PermissionDenied

    from pocare.custody.services import therapy_order_cancel
    from tests.custody.helpers import accepted, collect

    order = accepted("MAD")
    collect(order)
    with pytest.raises(ValidationError, match="material collected"):
        therapy_order_cancel(actor=people["navigator.mad"], order=order, reason="Elsewhere")
    with pytest.raises(PermissionDenied):
        therapy_order_cancel(actor=people["operator.mad"], order=order, reason="Elsewhere")
    order.refresh_from_db()
    assert order.status == OrderStatus.ACCEPTED


def _into_manufacture(order) -> object:  # type: ignore[no-untyped-def]
    """The booked order through the real services up to a batch in progress: accepted, the apheresis
    collected, shipped to the site and received there, the batch started by the site's operator."""
    from decimal import Decimal

    from pocare.custody import services as custody
    from pocare.custody.models import HandoffKind
    from pocare.manufacturing.services import batch_start
    from tests.custody.helpers import user
    from tests.manufacturing.helpers import creds, lots, unit_for_a_whole_batch, world

    lots(order.site.code, world())
    site, s = order.site, order.site.code.lower()
    physician, operator = user(f"physician.{order.treating_site.code.lower()}"), user(f"operator.{s}")
    order = custody.therapy_order_accept(actor=user(f"manager.{s}"), order=order, reason="Slot booked")
    now = timezone.now()
    collection = custody.collection_record(
        actor=physician,
        order=order,
        collection_started_at=now - dt.timedelta(hours=5),
        collection_ended_at=now - dt.timedelta(hours=1),
        volume_ml=Decimal("250"),
        donor_tests={"HIV": "negative", "HBV": "negative", "HCV": "negative"},
        reason="Apheresis done",
    )
    for kind, who, where in (
        (HandoffKind.COLLECTION, physician, "Apheresis unit"),
        (HandoffKind.DISPATCH_TO_SITE, physician, "Courier"),
    ):
        custody.handoff_record(
            actor=who,
            order=order,
            kind=kind,
            presented_identifier=collection.din,
            site=site,
            location=where,
            collection=collection,
        )
    shipment = custody.shipment_dispatch(
        actor=physician, order=order, leg="apheresis", logger_id="TL-BOOK", reason="Apheresis to the site"
    )
    custody.temperatures_upload(
        actor=operator,
        shipment=shipment,
        source="api",
        rows=[{"timestamp": shipment.dispatched_at.isoformat(), "temperature_c": 4.5}],
    )
    custody.handoff_record(
        actor=operator,
        order=order,
        kind=HandoffKind.RECEIPT_AT_SITE,
        presented_identifier=collection.din,
        site=site,
        location="Goods-in",
        collection=collection,
    )
    return batch_start(
        actor=operator,
        order=order,
        unit=unit_for_a_whole_batch(site.code),
        presented_identifier=collection.din,
        credentials=creds(operator),
    )


def test_a_chain_is_neither_moved_nor_cancelled_once_material_exists_or_its_batch_has_started(people, ready):
    """ATMP-TRACE: once the apheresis is collected, and again once the batch has started, moving the chain
    (to another site or the same) and cancelling it are refused naming what happened, and nothing
    changes: the booking stays active, the order stays, no order is made elsewhere, no event is written."""
    from pocare.custody.models import TherapyOrder
    from pocare.custody.services import therapy_order_cancel
    from pocare.ledger.models import Event

    navigator = people["navigator.mad"]
    mad = next(p for p in svc.chain_propose(user=navigator, referral=ready) if p.site.code == "MAD")
    booking = svc.chain_book(actor=navigator, referral=ready, proposal=mad, reason="Home hospital")
    ready.refresh_from_db()
    order = ready.order
    elsewhere = next(
        p for p in svc.chain_propose(user=navigator, referral=ready, moving=booking) if p.site.code == "LIS"
    )
    batch = _into_manufacture(order)
    order.refresh_from_db()
    din = order.collections.get().din
    orders, events = TherapyOrder.objects.count(), Event.objects.count()
    for move in (elsewhere, mad):
        with pytest.raises(ValidationError) as caught:
            svc.chain_rebook(actor=navigator, booking=booking, proposal=move, reason="Closer to home")
        said = " ".join(caught.value.message_dict["booking"])
        assert f"no longer moved: for therapy order {order.coi}" in said
        assert f"its batch {batch.reference} has started" in said and f"DIN {din}" in said
    with pytest.raises(ValidationError, match=f"no longer cancelled: .*its batch {batch.reference} has started"):
        svc.booking_cancel(actor=navigator, booking=booking, reason="Patient unwell")
    with pytest.raises(ValidationError, match=f"is not cancelled: its batch {batch.reference} has started"):
        therapy_order_cancel(actor=navigator, order=order, reason="Elsewhere")
    booking.refresh_from_db()
    order.refresh_from_db()
    ready.refresh_from_db()
    assert booking.status == BookingStatus.ACTIVE and ready.order == order
    assert order.status == OrderStatus.IN_MANUFACTURE
    assert (TherapyOrder.objects.count(), Event.objects.count()) == (orders, events)


def test_a_move_to_another_site_onto_a_slot_taken_meanwhile_changes_nothing(people, ready):
    """All or nothing: the move's slot went to another patient after it was proposed, so the old
    booking stays active and its order at the old site is not cancelled, and no order is made at the new one."""
    from pocare.custody.models import TherapyOrder

    navigator = people["navigator.mad"]
    first_day = svc.chain_propose(user=navigator, referral=ready)[0].apheresis_slot.starts_at
    booked = svc.chain_book(
        actor=navigator,
        referral=ready,
        proposal=next(
            p
            for p in svc.chain_propose(user=navigator, referral=ready, after=first_day + dt.timedelta(days=10))
            if p.site.code == "MAD"
        ),
        reason="Book",
    )
    ready.refresh_from_db()
    order = ready.order
    stale = next(p for p in svc.chain_propose(user=navigator, referral=ready, moving=booked) if p.site.code == "LIS")
    other = _second_referral(people, ready)
    taking = next(
        p for p in svc.chain_propose(user=navigator, referral=other) if p.apheresis_slot == stale.apheresis_slot
    )
    svc.chain_book(actor=people["physician.mad"], referral=other, proposal=taking, reason="Book")
    orders = TherapyOrder.objects.count()
    with pytest.raises(ValidationError, match="just taken"):
        svc.chain_rebook(actor=navigator, booking=booked, proposal=stale, reason="Closer to home")
    booked.refresh_from_db()
    order.refresh_from_db()
    ready.refresh_from_db()
    assert booked.status == BookingStatus.ACTIVE and booked.replaced_by is None
    assert ready.order == order and order.status == OrderStatus.REQUESTED
    assert TherapyOrder.objects.count() == orders


# --- the booked unit at batch start ----------------------------------------------------------------


def test_a_booked_manufacturing_slot_keeps_its_unit_from_another_orders_batch(people, ready):
    """The unit booked for the patient refuses another order's batch over the window, names the
    reservation, lets the patient's own order start, and comes first on the batch start page."""
    from pocare.manufacturing.selectors import units_for
    from pocare.manufacturing.services import unit_problems
    from tests.custody.helpers import order

    proposal = next(p for p in svc.chain_propose(user=people["navigator.mad"], referral=ready) if p.site.code == "MAD")
    booking = svc.chain_book(actor=people["navigator.mad"], referral=ready, proposal=proposal, reason="Book")
    ready.refresh_from_db()
    during = booking.manufacturing_from + dt.timedelta(hours=1)
    stranger = order("MAD", recipient="PT-9999")
    problems = unit_problems(
        unit=booking.unit, batch_site=booking.manufacturing_site, device_class=None, at=during, order=stranger
    )
    assert any(f"kept for the booked manufacturing slot of {ready.patient.pseudonym}" in p for p in problems)
    assert not unit_problems(
        unit=booking.unit, batch_site=booking.manufacturing_site, device_class=None, at=during, order=ready.order
    )
    assert not unit_problems(
        unit=booking.unit,
        batch_site=booking.manufacturing_site,
        device_class=None,
        at=booking.manufacturing_to + dt.timedelta(hours=1),
        order=stranger,
    )
    _unit("MAD", "AAA-FIRST-BY-SERIAL")
    assert units_for(ready.order)[0][0] == booking.unit


# --- two navigators, one last slot (PostgreSQL) ----------------------------------------------------


@pytest.mark.skipif(
    "connection.vendor == 'sqlite'",
    reason="SQLite has one write lock for the whole database: no two bookings run at once",
)
def test_two_navigators_booking_the_last_slot_at_once_one_wins_the_other_is_told(tx_db):
    """Two connections book the same last chain at the same moment: exactly one Booking, the other
    navigator gets the ValidationError naming the taken slot."""
    from tests.conftest import People
    from tests.custody.helpers import effective_at

    people = People()
    for code in ("MAD", "LIS"):
        effective_at(code)
        _unit(code)
    first = _tomorrow(8)
    svc.slots_open(
        actor=people["navigator.mad"],
        site=_site("MAD"),
        kind=SlotKind.APHERESIS,
        starts=first,
        ends=first + dt.timedelta(hours=1),
        every=60,
        duration=60,
        reason="The last slot",
    )
    _open(people, SlotKind.INFUSION, _tomorrow(13), 60)
    product = effective_at("MAD").product
    referrals = [_referral_for(people, product, name) for name in ("Ana Pérez", "Rui Costa")]
    proposals = [svc.chain_propose(user=people["navigator.mad"], referral=r)[0] for r in referrals]
    assert proposals[0].apheresis_slot == proposals[1].apheresis_slot
    barrier = threading.Barrier(2)
    outcomes: list[object] = [None, None]

    def navigator(i: int, who: str) -> None:
        close_old_connections()
        try:
            barrier.wait(timeout=30)
            outcomes[i] = svc.chain_book(
                actor=people[who], referral=referrals[i], proposal=proposals[i], reason="Book the last slot"
            )
        except Exception as exc:
            outcomes[i] = exc
        finally:
            connection.close()

    threads = [
        threading.Thread(target=navigator, args=(0, "navigator.mad")),
        threading.Thread(target=navigator, args=(1, "physician.mad")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert Booking.objects.count() == 1
    won = [o for o in outcomes if isinstance(o, Booking)]
    lost = [o for o in outcomes if isinstance(o, ValidationError)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert "just taken" in str(lost[0])


@pytest.mark.skipif(
    "connection.vendor == 'sqlite'", reason="SQLite has one write lock for the whole database: no two moves run at once"
)
def test_two_navigators_moving_chains_onto_the_last_slot_at_once_one_wins_the_other_changes_nothing(tx_db):
    """Two booked patients, two connections moving each chain onto the same newly freed early slot at the
    same moment: one move wins; the other is told, and its booking, its therapy order and every other
    order are as they were (a move to another site cancels and makes orders in the same transaction)."""
    from pocare.custody.models import TherapyOrder
    from tests.conftest import People
    from tests.custody.helpers import effective_at

    people = People()
    for code in ("MAD", "LIS"):
        effective_at(code)
        _unit(code)
    navigator = people["navigator.mad"]
    _open(people, SlotKind.APHERESIS, _tomorrow(8) + dt.timedelta(days=9), 2)
    _open(people, SlotKind.INFUSION, _tomorrow(13), 60)
    product = effective_at("MAD").product
    referrals = [_referral_for(people, product, name) for name in ("Ana Pérez", "Rui Costa")]
    bookings = [
        svc.chain_book(
            actor=navigator, referral=r, proposal=svc.chain_propose(user=navigator, referral=r)[0], reason="Book"
        )
        for r in referrals
    ]
    last = svc.slots_open(
        actor=navigator,
        site=_site("MAD"),
        kind=SlotKind.APHERESIS,
        starts=_tomorrow(8),
        ends=_tomorrow(8) + dt.timedelta(minutes=30),
        every=60,
        duration=60,
        reason="A cancellation frees a slot",
    )[0]
    order_ids = [Referral.objects.get(pk=r.pk).order_id for r in referrals]
    proposals = [
        svc.chain_propose(user=navigator, referral=r, moving=b)[0] for r, b in zip(referrals, bookings, strict=True)
    ]
    assert proposals[0].apheresis_slot == proposals[1].apheresis_slot == last
    orders_before = dict(TherapyOrder.objects.values_list("pk", "status"))
    barrier = threading.Barrier(2)
    outcomes: list[object] = [None, None]

    def move(i: int, who: str) -> None:
        close_old_connections()
        try:
            barrier.wait(timeout=30)
            outcomes[i] = svc.chain_rebook(
                actor=people[who], booking=bookings[i], proposal=proposals[i], reason="An earlier slot came free"
            )
        except Exception as exc:
            outcomes[i] = exc
        finally:
            connection.close()

    threads = [
        threading.Thread(target=move, args=(0, "navigator.mad")),
        threading.Thread(target=move, args=(1, "physician.mad")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    won = [i for i, o in enumerate(outcomes) if isinstance(o, Booking)]
    lost = [i for i, o in enumerate(outcomes) if isinstance(o, ValidationError)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert "just taken" in str(outcomes[lost[0]])
    assert Booking.objects.get(status=BookingStatus.ACTIVE, apheresis_slot=last).referral_id == referrals[won[0]].pk
    loser = Booking.objects.get(pk=bookings[lost[0]].pk)
    assert loser.status == BookingStatus.ACTIVE and loser.replaced_by is None
    assert Booking.objects.filter(status=BookingStatus.MOVED).count() == 1
    loser_referral = Referral.objects.get(pk=referrals[lost[0]].pk)
    assert loser_referral.order_id == order_ids[lost[0]]
    assert TherapyOrder.objects.get(pk=loser_referral.order_id).status == orders_before[loser_referral.order_id]


# --- the pages ----------------------------------------------------------------------------------------


def test_the_navigator_books_and_cancels_from_the_booking_page(client, login, people, ready):
    url = f"/patients/{ready.patient.pseudonym}/booking/"
    login("navigator.mad")
    page = client.get(url)
    assert page.status_code == 200
    proposals = page.context["proposals"]
    assert proposals and proposals[0].token in page.content.decode()
    assert "Lucía" not in page.content.decode()  # PAT-PRIVACY: the pseudonym only
    refused = client.post(url, {"action": "book", "proposal": "1-2-3", "reason": "Earliest"})
    assert refused.status_code == 400 and not Booking.objects.exists()
    done = client.post(url, {"action": "book", "proposal": proposals[0].token, "reason": "Earliest"}, follow=True)
    assert done.redirect_chain[-1][1] == 302
    booking = Booking.objects.get()
    assert booking.status == BookingStatus.ACTIVE
    said = done.content.decode()  # what was booked, in the hospital's time
    assert (
        "Booked: apheresis" in said and site_time(booking.apheresis_slot.starts_at, booking.apheresis_slot.site) in said
    )
    assert client.post(url, {"action": "cancel", "reason": ""}).status_code == 400
    cancelled = client.post(url, {"action": "cancel", "reason": "Patient unwell"}, follow=True)
    assert "Cancelled; the slots are free again" in cancelled.content.decode()
    assert Booking.objects.get().status == BookingStatus.CANCELLED
    assert client.get(url + "?after=9999-01-01").status_code == 400


def test_the_navigator_moves_the_chain_to_another_site_from_the_booking_page(client, login, people, ready):
    """The dialog before the move says that the order at the old site is cancelled; the page then says
    what was done. A move without a reason is refused (400) and changes nothing."""
    from django.urls import reverse

    navigator = people["navigator.mad"]
    mad = next(p for p in svc.chain_propose(user=navigator, referral=ready) if p.site.code == "MAD")
    booking = svc.chain_book(actor=navigator, referral=ready, proposal=mad, reason="Home hospital")
    url = reverse("patients:booking", kwargs={"pseudonym": ready.patient.pseudonym})
    assert url == f"/patients/{ready.patient.pseudonym}/booking/"
    login("navigator.mad")
    page = client.get(url).content.decode()
    assert "Move here…" in page
    assert "The manufacturing site changes: the therapy order at MAD is cancelled and a new one is made at LIS." in page
    lis = next(p for p in svc.chain_propose(user=navigator, referral=ready, moving=booking) if p.site.code == "LIS")
    assert client.post(url, {"action": "rebook", "proposal": lis.token, "reason": ""}).status_code == 400
    assert Booking.objects.get().status == BookingStatus.ACTIVE
    moved = client.post(url, {"action": "rebook", "proposal": lis.token, "reason": "Closer to home"}, follow=True)
    assert moved.redirect_chain[-1][1] == 302
    assert "Moved to LIS, its therapy order at MAD cancelled and a new one made: apheresis" in moved.content.decode()
    assert Booking.objects.get(status=BookingStatus.ACTIVE).manufacturing_site.code == "LIS"
    # The patient's page leads to the booking page.
    assert (
        url in client.get(reverse("patients:patient", kwargs={"pseudonym": ready.patient.pseudonym})).content.decode()
    )


def test_the_slot_calendar_opens_slots_and_hides_other_hospitals(client, login, people):
    login("navigator.mad")
    starts = _tomorrow(8)
    form = {
        "kind": "apheresis",
        "starts": starts.strftime("%Y-%m-%dT%H:%M"),
        "ends": (starts + dt.timedelta(days=6)).strftime("%Y-%m-%dT%H:%M"),
        "every": "1440",
        "duration": "180",
        "reason": "Apheresis capacity",
    }
    opened = client.post("/patients/slots/MAD/", form, follow=True)
    assert opened.redirect_chain[-1][1] == 302 and "7 slots opened." in opened.content.decode()
    assert ClinicSlot.objects.filter(site__code="MAD").count() == 7
    assert client.post("/patients/slots/MAD/", {**form, "every": "1" + "0" * 400}).status_code == 400
    assert client.post("/patients/slots/MAD/", {**form, "starts": "9999-12-31T00:00"}).status_code == 400
    assert ClinicSlot.objects.count() == 7
    assert client.get("/patients/slots/MAD/").status_code == 200
    assert client.get("/patients/slots/LIS/").status_code == 404
    assert client.get("/patients/slots/CTRL/").status_code == 404


def test_the_demo_opens_each_hospitals_slots_once(people):
    from pocare.demo import slots

    now = timezone.now()
    opened = slots.load(now=now)
    assert opened == ClinicSlot.objects.count() > 0
    assert ClinicSlot.objects.filter(site__code="MAD", kind=SlotKind.APHERESIS).count() == slots.DAYS
    assert slots.load(now=now) == 0
