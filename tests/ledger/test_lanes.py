"""Lanes: on PostgreSQL a site's appends spread over lanes (hash chains of their own) instead of
queueing behind one another, and everything that reads "the site's trail" reads every lane."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction
from django.test import override_settings

from pocare.accounts.models import User
from pocare.ledger.models import MAX_LANES, ChainHead, Event, chains_with_lanes, lane_chain, site_chain
from pocare.ledger.review import review_pending
from pocare.ledger.signing import SigningCredentials
from pocare.ledger.verify import verify_all
from pocare.network.models import Site
from pocare.trail import selectors
from pocare.trail.services import trail_review_sign
from tests.conftest import PASSWORD, drop_triggers
from tests.ledger.helpers import appending_elsewhere, postgres_only, raw, write_events


def test_an_append_while_another_holds_the_site_chain_takes_the_next_lane(tx_db):
    """P11-10e: a writer does not wait for another writer of the same site: it appends to lane
    MAD/1, a hash chain of its own, and both lanes verify."""
    postgres_only()
    operator = User.objects.get(username="operator.mad")
    mad = Site.objects.get(code="MAD")
    with appending_elsewhere("MAD") as held:
        mine = write_events(operator, mad, 2, reason="beside")
    assert [e.chain for e in held] == ["MAD"]
    assert [e.chain for e in mine] == ["MAD/1", "MAD/1"]
    assert [e.seq for e in mine] == [1, 2] and mine[0].site_code == "MAD"
    assert mine[1].prev_hash == mine[0].hash
    assert ChainHead.objects.get(chain="MAD/1").seq == 2
    report = verify_all(chains=["MAD"])
    assert report.ok and [c.chain for c in report.chains] == ["MAD", "MAD/1"]


def test_one_lane_when_the_setting_says_so(tx_db):
    """P11-10e: with POCARE_LEDGER_LANES=1 a second writer waits for the first and appends after
    it on the site's one chain."""
    postgres_only()
    operator = User.objects.get(username="operator.mad")
    mad = Site.objects.get(code="MAD")
    done: list[Event] = []

    def second() -> None:
        try:  # settings are global: the block below holds POCARE_LEDGER_LANES=1 for this thread too
            done.extend(write_events(operator, mad, 1, reason="after"))
        finally:
            connection.close()

    with override_settings(POCARE_LEDGER_LANES=1):
        with appending_elsewhere("MAD") as held:
            thread = threading.Thread(target=second)
            thread.start()
            thread.join(0.5)
            assert thread.is_alive() and not done  # waiting for the lane the other writer holds
        thread.join(30)
    assert [e.chain for e in done] == ["MAD"] and done[0].seq == held[0].seq + 1
    assert not ChainHead.objects.filter(chain="MAD/1").exists()
    assert verify_all(chains=["MAD"]).ok


def test_with_every_lane_busy_an_append_waits_and_then_links_correctly(tx_db):
    """P11-10e: with all lanes held, an append waits for one; nothing forks."""
    postgres_only()
    operator = User.objects.get(username="operator.mad")
    mad = Site.objects.get(code="MAD")
    done: list[Event] = []

    def third() -> None:
        try:
            done.extend(write_events(operator, mad, 1, reason="third"))
        finally:
            connection.close()

    with override_settings(POCARE_LEDGER_LANES=2):
        with appending_elsewhere("MAD"), appending_elsewhere("MAD") as second:
            assert [e.chain for e in second] == ["MAD/1"]
            thread = threading.Thread(target=third)
            thread.start()
            thread.join(0.5)
            assert thread.is_alive() and not done
        thread.join(30)
    assert len(done) == 1 and done[0].chain in {"MAD", "MAD/1"}
    assert not ChainHead.objects.filter(chain="MAD/2").exists()
    assert verify_all(chains=["MAD"]).ok


def test_a_transaction_appending_twice_keeps_to_its_lane(tx_db):
    """P11-10e: a transaction that appends twice while another writer holds the site's chain
    writes both events on its own lane, one after the other."""
    postgres_only()
    operator = User.objects.get(username="operator.mad")
    mad = Site.objects.get(code="MAD")
    with appending_elsewhere("MAD"), transaction.atomic():
        pair = write_events(operator, mad, 2, reason="pair")
    assert [(e.chain, e.seq) for e in pair] == [("MAD/1", 1), ("MAD/1", 2)]
    assert verify_all(chains=["MAD"]).ok


def test_tampering_on_a_lane_is_found_and_named(tx_db):
    """P11-10e: an event edited on a lane breaks that lane, and `audit verify --chain MAD` says so."""
    postgres_only()
    operator = User.objects.get(username="operator.mad")
    mad = Site.objects.get(code="MAD")
    with appending_elsewhere("MAD"):
        mine = write_events(operator, mad, 3, reason="lane")
    drop_triggers()
    raw("UPDATE ledger_event SET reason = 'edited' WHERE id = %s", [mine[1].pk])
    report = verify_all(chains=["MAD"])
    broken = [c for c in report.chains if not c.ok]
    assert [c.broken_event for c in broken] == ["MAD/1#2"]


def test_a_site_person_sees_every_lane_of_their_site_and_no_other(tx_db):
    """P11-10g: scoping by site covers the site's lanes; another site's lanes stay hidden."""
    postgres_only()
    operator = User.objects.get(username="operator.mad")
    with appending_elsewhere("MAD"):
        mine = write_events(operator, Site.objects.get(code="MAD"), 1)
    with appending_elsewhere("LIS"):
        theirs = write_events(User.objects.get(username="operator.lis"), Site.objects.get(code="LIS"), 1)
    assert mine[0].chain == "MAD/1" and theirs[0].chain == "LIS/1"
    visible = selectors.events_visible(User.objects.get(username="manager.mad"))
    assert visible.filter(pk=mine[0].pk).exists() and not visible.filter(pk=theirs[0].pk).exists()


def test_a_review_reads_on_along_every_lane(tx_db):
    """A11-9: a review of a site covers each of its lanes; the next starts where it ended on each."""
    postgres_only()
    manager = User.objects.get(username="manager.mad")
    operator = User.objects.get(username="operator.mad")
    mad = Site.objects.get(code="MAD")
    with appending_elsewhere("MAD"):
        write_events(operator, mad, 2, reason="lane")
    pending = {r.chain: r for r in review_pending("MAD")}
    assert set(pending) == {"MAD", "MAD/1"} and pending["MAD/1"].count == 2
    head1 = ChainHead.objects.get(chain="MAD/1")
    creds = SigningCredentials(username="manager.mad", password=PASSWORD)
    review = trail_review_sign(actor=manager, chain="MAD", comment="Both lanes read.", credentials=creds)
    assert review.lanes == {"MAD/1": {"from_seq": 1, "to_seq": 2, "to_hash": head1.hash}}
    assert review.covers("MAD/1") == 2 and review.covers("MAD") == review.to_seq
    assert "MAD/1#1–2" in review.range_label
    # The next review starts after what this one read, on each lane (the review's own events are new).
    after = {r.chain: r for r in review_pending("MAD")}
    assert after["MAD/1"].from_seq == 3 and after["MAD"].from_seq == review.to_seq + 1
    assert verify_all(chains=["MAD"]).ok and not verify_all(chains=["MAD"]).signature_problems


def test_lane_names():
    """Lane 0 is the chain itself, so a trail written before lanes existed reads unchanged."""
    assert lane_chain("MAD", 0) == "MAD" and lane_chain("MAD", 3) == "MAD/3"
    assert site_chain("MAD/3") == "MAD" and site_chain("NETWORK") == "NETWORK"
    assert chains_with_lanes(["MAD/2"])[:2] == ["MAD", "MAD/1"] and len(chains_with_lanes(["MAD"])) == MAX_LANES
    with pytest.raises(ValueError):
        lane_chain("MAD", MAX_LANES)


def test_the_review_pages_show_each_lane(tx_db, login):
    """A11-9: the reviews page lists what waits on each lane; a signed review shows each lane's range."""
    postgres_only()
    operator = User.objects.get(username="operator.mad")
    with appending_elsewhere("MAD"):
        write_events(operator, Site.objects.get(code="MAD"), 2, reason="lane")
    client = login("manager.mad")
    page = client.get("/audit/reviews/")
    assert page.status_code == 200 and b"MAD/1#1 \xe2\x80\x93 #2" in page.content
    review = trail_review_sign(actor=User.objects.get(username="manager.mad"), chain="MAD", comment="Read.",
                               credentials=SigningCredentials(username="manager.mad", password=PASSWORD))
    detail = client.get(f"/audit/reviews/{review.pk}/")
    assert detail.status_code == 200 and b"MAD/1" in detail.content and b"#1 to #2" in detail.content


def _forget_lanes() -> None:
    """This connection starts afresh (lane 0 first), as a new connection would."""
    from pocare.ledger import services

    services._guesses.pop(connections["default"], None)


def test_a_reviewed_lane_deleted_whole_is_found(tx_db):
    """P11-10e A11-9: a lane deleted with its head leaves no chain to walk; the signed review that
    read it names it, and verify reports the lane as broken."""
    postgres_only()
    operator = User.objects.get(username="operator.mad")
    with appending_elsewhere("MAD"):
        write_events(operator, Site.objects.get(code="MAD"), 2, reason="lane")
    _forget_lanes()
    review = trail_review_sign(actor=User.objects.get(username="manager.mad"), chain="MAD", comment="Read.",
                               credentials=SigningCredentials(username="manager.mad", password=PASSWORD))
    assert review.lanes["MAD/1"]["to_seq"] == 2 and verify_all(chains=["MAD"]).ok
    drop_triggers()
    raw("DELETE FROM ledger_event WHERE chain = 'MAD/1'")
    raw("DELETE FROM ledger_chainhead WHERE chain = 'MAD/1'")
    report = verify_all(chains=["MAD"])
    broken = {c.chain: c for c in report.chains if not c.ok}
    assert set(broken) == {"MAD/1"} and f"signed review {review.pk} read it" in broken["MAD/1"].problem


def test_a_lane_missing_below_another_is_found(tx_db):
    """P11-10e: lanes open in order, so a lane deleted whole below a later one is reported."""
    postgres_only()
    operator, mad = User.objects.get(username="operator.mad"), Site.objects.get(code="MAD")
    with appending_elsewhere("MAD"):
        first = write_events(operator, mad, 1)  # opens MAD/1 (and commits)
        with appending_elsewhere("MAD") as second:  # another writer now holds MAD/1
            third = write_events(operator, mad, 1)  # opens MAD/2
    assert [e.chain for e in first + second + third] == ["MAD/1", "MAD/1", "MAD/2"]
    drop_triggers()
    raw("DELETE FROM ledger_event WHERE chain = 'MAD/1'")
    raw("DELETE FROM ledger_chainhead WHERE chain = 'MAD/1'")
    report = verify_all(chains=["MAD"])
    broken = {c.chain: c for c in report.chains if not c.ok}
    assert set(broken) == {"MAD/1"} and "a later lane exists" in broken["MAD/1"].problem
