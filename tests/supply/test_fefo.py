"""First expiry, first out at the step (SUP-STOCK): the step's form proposes the lot that expires
first among the released, unexpired lots with enough stock at the site (manufacturing asks
``manufacturing.lot_first_out``; the supply app answers from its movements). A lot that expires
later is taken only with a reason, kept with the use, in the step's event, on the batch record and
in the release dossier; the use's content hash binds the reason."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client

from pocare.accounts.services import token_issue
from pocare.ledger.models import Event
from pocare.ledger.records import stamped_record_problems
from pocare.manufacturing import services as mfg
from pocare.manufacturing.models import MaterialUse
from pocare.manufacturing.selectors import batch_page, lots_proposed, review_items
from pocare.supply import selectors
from pocare.supply.models import StockMovement
from tests.manufacturing import helpers as h
from tests.supply import helpers as s
from tests.supply.test_step import COUNT_STEP, at_count_step, record_count

KEY = f"materials.{s.SYRINGE}"


def _refused(batch, lot, reason) -> str:
    """The step refused naming the syringe; nothing recorded."""
    uses, movements = MaterialUse.objects.count(), StockMovement.objects.count()
    with pytest.raises(ValidationError) as refused:
        h.do_step(batch, materials={s.SYRINGE: {"lot": lot.lot_number, "fefo_reason": reason}})
    assert (MaterialUse.objects.count(), StockMovement.objects.count()) == (uses, movements)
    return " ".join(refused.value.message_dict[KEY])


@pytest.mark.django_db
def test_a_lot_that_expires_later_is_taken_only_with_a_reason_kept_with_the_use():
    """SUP-STOCK ATMP-TRACE: two released lots of syringes at the site: the one expiring in 60 days is
    proposed; taking the one expiring in 200 days without a reason is refused naming the material and
    the lot to take; with a reason the step is recorded, the reason is on the use, in the step's event,
    in review by exception, and bound to the use's content hash (an edit below the ORM is found)."""
    batch = at_count_step()
    soon, later = s.received(5, expiry_days=60), s.received(5, expiry_days=200)
    step = mfg.step_definition(batch, COUNT_STEP)
    first = lots_proposed(batch, step)[s.SYRINGE]
    assert (first.lot_id, first.in_stock) == (soon.pk, 5)
    message = _refused(batch, later, "")
    assert soon.lot_number in message and later.lot_number in message and "first expiry, first out" in message
    outcome = h.do_step(batch, materials={s.SYRINGE: {"lot": later.lot_number,
                                                      "fefo_reason": "Lot opened for the previous patient"}})
    use = MaterialUse.objects.get(step=outcome.step)
    assert (use.lot, use.fefo_reason) == (later, "Lot opened for the previous patient")
    assert (selectors.lot_stock(soon), selectors.lot_stock(later)) == (5, 4)
    event = Event.objects.get(event_type="manufacturing.step_recorded", object_id=str(outcome.step.pk))
    assert event.new["fefo_reasons"] == {s.SYRINGE: "Lot opened for the previous patient"}
    review = [i for i in review_items(batch_page(batch)) if i.kind == "Not first expiry"]
    assert [(i.severity, i.anchor) for i in review] == [("warn", f"step-{COUNT_STEP}")]
    assert later.lot_number in review[0].text and "Lot opened for the previous patient" in review[0].text
    assert "fefo_reason" in use.audited_content()
    assert stamped_record_problems()[1] == []
    with connection.cursor() as cur:
        cur.execute("UPDATE manufacturing_materialuse SET fefo_reason = %s WHERE id = %s", ["edited", use.pk])
    assert [p.record for p in stamped_record_problems()[1]] == [f"manufacturing.MaterialUse {use.pk}"]


@pytest.mark.django_db
def test_the_lot_proposed_needs_no_reason_and_a_reason_given_for_it_is_not_kept():
    """SUP-STOCK: the lot that expires first is recorded without a reason; a reason typed for it anyway
    is not kept (nothing to explain), and a use without a reason hashes as uses did before the column
    existed (the rows stamped before keep their hash)."""
    batch = at_count_step()
    soon, _later = s.received(5, expiry_days=60), s.received(5, expiry_days=200)
    outcome = h.do_step(batch, materials={s.SYRINGE: {"lot": soon.lot_number, "fefo_reason": "habit"}})
    use = MaterialUse.objects.get(step=outcome.step)
    assert use.fefo_reason == "" and "fefo_reason" not in use.audited_content()
    event = Event.objects.get(event_type="manufacturing.step_recorded", object_id=str(outcome.step.pk))
    assert "fefo_reasons" not in event.new


@pytest.mark.django_db
def test_a_lot_too_short_for_the_quantity_or_expiring_the_same_day_is_not_the_one_to_take():
    """SUP-STOCK: a lot with less stock than the step needs is not proposed (the next one is, and taking
    it needs no reason); two lots expiring the same day are equally first."""
    batch = at_count_step()
    one_left = s.received(1, expiry_days=30)
    soon, same_day = s.received(5, expiry_days=60), s.received(5, expiry_days=60)
    step = mfg.step_definition(batch, COUNT_STEP)  # its bill: one syringe
    assert lots_proposed(batch, step)[s.SYRINGE].lot_id == one_left.pk
    record_count(batch, same_day, 2)  # two syringes: the lot with one left is not the one to take
    assert MaterialUse.objects.get(lot=same_day).fefo_reason == ""
    assert selectors.lot_stock(soon) == 5


@pytest.mark.django_db
def test_a_hostile_reason_is_refused_naming_the_material_and_nothing_is_stored():
    """SUP-STOCK P11-10h: a reason that is not text, is 501 characters, or carries a NUL or another
    control character is refused naming the material; nothing is recorded."""
    batch = at_count_step()
    soon, later = s.received(5, expiry_days=60), s.received(5, expiry_days=200)
    assert "must be text" in _refused(batch, later, ["a", "list"])
    for reason in ("x" * 501, "opened\x00", "bell\x07"):
        message = _refused(batch, later, reason)
        assert "printable text of at most 500 characters" in message and soon.lot_number in message
    assert selectors.lot_stock(later) == 5


@pytest.mark.django_db
def test_the_step_page_proposes_the_lot_that_expires_first_and_asks_why_for_another():
    """SUP-STOCK: the step's form selects the lot that expires first, says so with its stock, and offers
    a reason field; another lot posted without a reason is a 400 naming the field and the lot to take;
    with a reason it is recorded and the batch record shows the reason beside the use."""
    batch = at_count_step()
    soon, later = s.received(5, expiry_days=60), s.received(5, expiry_days=200)
    client = Client()
    client.force_login(h.user("operator.mad"))
    url = f"/manufacturing/batches/{batch.reference}/steps/{COUNT_STEP}/"
    h.into_window(batch, mfg.step_definition(batch, COUNT_STEP))
    page = client.get(url).content.decode()
    assert f'<option value="{soon.pk}" selected>' in page
    assert "expires first, proposed (5 in stock)" in page
    assert f"Why not lot {soon.lot_number}?" in page
    step = mfg.step_definition(batch, COUNT_STEP)
    post = {"action": "record", "username": "operator.mad", "password": h.PASSWORD, f"m_{s.SYRINGE}": str(later.pk),
            **{f"v_{k}": v for k, v in h.good_values(step).items()}}
    refused = client.post(url, post)
    assert refused.status_code == 400
    assert f"lot {soon.lot_number} (expires" in refused.content.decode()
    assert not MaterialUse.objects.filter(step__batch=batch, lot=later).exists()
    done = client.post(url, {**post, f"fefo_{s.SYRINGE}": "Sterile pouch of the other lot torn"})
    assert done.status_code == 302, done.content.decode()[:2000]
    record = client.get(f"/manufacturing/batches/{batch.reference}/").content.decode()
    assert "not the first to expire: Sterile pouch of the other lot torn" in record


@pytest.mark.django_db
def test_the_api_takes_a_reason_per_material_and_refuses_a_stray_one(client):
    """SUP-STOCK P11-200: a machine client gives the reason under ``fefo_reasons``; without one a later
    lot is a 400 naming ``materials.<code>``; a reason for a material with no lot is a 400 naming it."""
    batch = at_count_step()
    soon, later = s.received(5, expiry_days=60), s.received(5, expiry_days=200)
    step = mfg.step_definition(batch, COUNT_STEP)
    h.into_window(batch, step)
    _, key = token_issue(actor=None, user=h.user("operator.mad"), name="mes", reason="test")
    url = f"/api/batches/{batch.reference}/steps/{COUNT_STEP}/record/"
    body = {"values": h.good_values(step), "username": "operator.mad", "password": h.PASSWORD,
            "materials": {s.SYRINGE: later.lot_number}}

    def post(**extra):
        return client.post(url, {**body, **extra}, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}")

    missing = post()
    assert missing.status_code == 400 and soon.lot_number in str(missing.json()[KEY])
    stray = post(fefo_reasons={s.SYRINGE: "Torn pouch", "NOPE": "why"})
    assert stray.status_code == 400 and "fefo_reasons.NOPE" in stray.json()
    too_long = post(fefo_reasons={s.SYRINGE: "x" * 501})
    assert too_long.status_code == 400 and "fefo_reasons" in too_long.json()
    assert not MaterialUse.objects.filter(lot=later).exists()
    ok = post(fefo_reasons={s.SYRINGE: "Torn pouch"})
    assert ok.status_code == 201, ok.content
    assert MaterialUse.objects.get(lot=later).fefo_reason == "Torn pouch"


@pytest.mark.django_db
def test_the_release_dossier_says_why_the_lot_was_not_the_first_to_expire():
    """SUP-STOCK ATMP-TRACE P11-10b: the inspector's bundle carries the reason in batch.json and the
    dossier PDF prints it beside the lot (read back from the PDF)."""
    from pocare.release.bundle import bundle_export
    from tests.pdf_reading import keep, opened
    from tests.release.test_bundle import _members

    batch = at_count_step()
    s.received(5, expiry_days=60)
    later = s.received(5, expiry_days=200)
    h.do_step(batch, materials={s.SYRINGE: {"lot": later.lot_number, "fefo_reason": "Pouch of the first lot torn"}})
    files = _members(bundle_export(actor=h.user("inspector"), batch=batch).content)
    keep("bundle-dossier-fefo.pdf", files["dossier.pdf"])
    uses = [m for step in json.loads(files["batch.json"])["steps"] for m in step.get("materials", [])]
    assert [m["fefo_reason"] for m in uses if m["lot"]["lot_number"] == later.lot_number] == [
        "Pouch of the first lot torn"]
    with opened(files["dossier.pdf"]) as pdf:
        text = " ".join((page.extract_text() or "") for page in pdf.pages)
    # The reason sits in the table's last column, wrapped over lines that the text interleaves with its row.
    assert "Not the first to expire: Pouch of the" in text and "first lot torn" in text

