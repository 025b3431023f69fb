"""`pocare din CODE`: prints the check character, or says valid/invalid with exit status 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pocare.custody import isbt

POCARE = str(Path(sys.executable).parent / "pocare")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": "", "POCARE_LOG_LEVEL": "ERROR"}
    return subprocess.run([POCARE, "din", *args], capture_output=True, text=True, env=env, timeout=60, check=False)


def test_thirteen_characters_print_the_check_character():
    """ISBT-DIN: with 13 characters the command prints the check character and the printed DIN."""
    din13, check = isbt.din_build("P1001", 26, 1)
    result = _run(din13)
    assert result.returncode == 0, result.stderr
    assert f"check character: {check}" in result.stdout and f"P1001 26 000001 00 {check}" in result.stdout


def test_valid_and_invalid_dins_and_exit_codes():
    """ISBT-DIN: a right check character says valid (exit 0); a wrong one says invalid, gives the
    right one and exits 1; a malformed DIN exits 1 naming what is wrong."""
    din13, check = isbt.din_build("P1001", 26, 1)
    ok = _run("P1001", "26", "000001", check)
    assert ok.returncode == 0 and "valid" in ok.stdout
    wrong = "0" if check != "0" else "1"
    bad = _run(din13 + wrong)
    assert bad.returncode == 1 and "invalid" in bad.stderr and f"the right one is {check!r}" in bad.stderr
    short = _run("P10012600")
    assert short.returncode == 1 and "13 characters" in short.stderr
