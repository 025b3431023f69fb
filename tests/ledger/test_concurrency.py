"""Concurrent writers never fork or break a hash chain."""

from __future__ import annotations

import threading

from django.db import close_old_connections, connection

from pocare.accounts.models import User
from pocare.ledger.models import ChainHead, Event, chains_with_lanes
from pocare.ledger.verify import verify_all
from pocare.network.models import Site
from tests.ledger.helpers import write_events


def _hammer(codes: list[str], per_writer: int) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(len(codes))

    def writer(code: str) -> None:
        try:
            close_old_connections()
            site = Site.objects.get(code=code)
            actor = User.objects.get(username=f"operator.{code.lower()}")
            start.wait()
            write_events(actor, site, per_writer, reason="concurrent")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(code,)) for code in codes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return errors


def test_eight_writers_at_one_site_never_fork_its_chain(tx_db):
    """P11-10e: appends to one lane serialize on its head; no two events share a position, no
    event is lost, and every lane of the site's chain verifies."""
    before = ChainHead.objects.get(chain="MAD").seq
    errors = _hammer(["MAD"] * 8, 15)
    assert not errors, errors
    lanes = chains_with_lanes(["MAD"])
    assert Event.objects.filter(chain__in=lanes).count() == before + 8 * 15
    assert sum(ChainHead.objects.filter(chain__in=lanes).values_list("seq", flat=True)) == before + 8 * 15
    report = verify_all(chains=["MAD"])
    assert report.ok and report.events >= before + 8 * 15
    assert {c.chain for c in report.chains} == set(ChainHead.objects.filter(chain__in=lanes).values_list("chain", flat=True))
    if connection.vendor == "sqlite":  # one write lock for the whole database: one lane is enough
        assert set(Event.objects.filter(chain__in=lanes).values_list("chain", flat=True)) == {"MAD"}


def test_writers_at_different_sites_append_to_their_own_chains(tx_db):
    """P11-10e: per-site chains let sites write side by side, each chain intact."""
    codes = ["MAD", "LIS", "MUC", "GRO", "MIL", "DUB"]
    before = {c: ChainHead.objects.get(chain=c).seq for c in codes}
    errors = _hammer(codes, 20)
    assert not errors, errors
    assert {c: ChainHead.objects.get(chain=c).seq - before[c] for c in codes} == dict.fromkeys(codes, 20)
    assert verify_all().ok
