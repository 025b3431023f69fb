"""The project as a user installs and runs it: the `pocare` command, the demo, production checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

POCARE = str(Path(sys.executable).parent / "pocare")


def _run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ["PATH"], "POCARE_VAR_DIR": str(tmp_path), "HOME": str(tmp_path)}
    return subprocess.run([POCARE, *args], capture_output=True, text=True, env={**base, **env}, timeout=300)


def test_production_settings_pass_the_deployment_check(tmp_path):
    """P11-300: HTTPS-only cookies, HSTS and a real secret key in production (`check --deploy`)."""
    result = _run(["check", "--deploy", "--fail-level", "WARNING"], tmp_path,
                  POCARE_ENV="production", POCARE_SECRET_KEY="k" * 20 + "0123456789abcdefghijklmnopqrstuvwxyzABCD",
                  POCARE_ALLOWED_HOSTS="pocare.example.org", POCARE_TRUSTED_PROXY="127.0.0.1")
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    result = _run(["check"], tmp_path, POCARE_ENV="production", POCARE_ALLOWED_HOSTS="x.org")
    assert result.returncode != 0 and "POCARE_SECRET_KEY" in result.stderr


@pytest.mark.parametrize("lanes", ["0", "33", "many"])
def test_a_lane_count_out_of_range_is_refused_at_start_naming_the_setting(tmp_path, lanes):
    """Bad configuration: POCARE_LEDGER_LANES outside 1..32 stops the command with a message that
    names the variable and what is allowed, before anything is written."""
    result = _run(["check"], tmp_path, POCARE_LEDGER_LANES=lanes)
    assert result.returncode != 0 and "POCARE_LEDGER_LANES must be a whole number from 1 to 32" in result.stderr
    assert not (tmp_path / "pocare.sqlite3").exists()


def test_production_refuses_the_demo(tmp_path):
    """The demo's public password never reaches production: the command stops and says why (not
    some other failure)."""
    result = _run(["demo"], tmp_path, POCARE_ENV="production", POCARE_ALLOWED_HOSTS="x.org",
                  POCARE_SECRET_KEY="s" * 60)
    assert result.returncode != 0 and "not loaded when POCARE_ENV=production" in result.stderr, result.stderr


def test_the_demo_loads_twice_into_the_same_network_and_verifies(tmp_path):
    """P11-10e: `pocare demo` is idempotent, and its audit trail verifies."""
    assert _run(["migrate", "--no-input", "-v", "0"], tmp_path).returncode == 0
    first = _run(["demo"], tmp_path)
    assert first.returncode == 0, first.stderr
    assert "operator.mad" in first.stdout and "pocare-demo-2026" in first.stdout
    second = _run(["demo"], tmp_path)
    assert second.returncode == 0 and second.stdout == first.stdout
    verify = _run(["audit", "verify", "--quiet"], tmp_path)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "events checked in 9 chains" in verify.stdout  # 8 sites (Porto in qualification) + NETWORK
    # Each load anchored the trail (issue 16): two signed digests, both still prefixes of the chains.
    assert "Trail anchored:" in first.stderr and "Trail anchored:" in second.stderr
    digests = _run(["audit", "verify", "--digests"], tmp_path)
    assert digests.returncode == 0, digests.stdout + digests.stderr
    triggers = _run(["audit", "triggers"], tmp_path)
    assert triggers.returncode == 0 and "in place" in triggers.stdout
    effective = _run(["shell", "-c", (
        "from pocare.masterfile.models import Product;from pocare.network.models import Site;"
        "from pocare.masterfile.selectors import effective_version as ev;p=Product.objects.get(code='CD19-CART');"
        "print(*[f'{c}=v{ev(site=Site.objects.get(code=c), product=p).number}' for c in ('MAD','LIS')])")], tmp_path)
    assert "MAD=v2 LIS=v1" in effective.stdout, effective.stdout + effective.stderr


@pytest.mark.django_db
def test_the_demo_network_has_seven_sites_and_a_person_per_role_per_site():
    from pocare.accounts.models import Membership
    from pocare.accounts.roles import NETWORK_ROLES, SITE_ROLES
    from pocare.network.models import Site

    sites = list(Site.objects.all())
    assert len(sites) == 7 and sum(s.is_control for s in sites) == 1
    for site in sites:
        roles = set(Membership.objects.filter(site=site).values_list("role", flat=True))
        assert roles == ({r.value for r in NETWORK_ROLES} if site.is_control else {r.value for r in SITE_ROLES})
        assert site.tz is not None
