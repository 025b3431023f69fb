"""The comparability world the analytics page tests run on: the demo product and its v1, the demo
network, and five months of demo history ending a month before ``NOW``."""

from __future__ import annotations

import datetime as dt

from pocare.demo import masterfile as masterfile_demo
from pocare.demo import network as network_demo
from pocare.demo.history import load_history
from pocare.masterfile.models import MasterFileVersion
from tests.conftest import PASSWORD

NOW = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)


def comparability_world() -> MasterFileVersion:
    version = masterfile_demo.load_product_and_v1(password=PASSWORD)
    network_demo.load(password=PASSWORD, product=version.product)
    load_history(months=5, now=NOW)
    return version
