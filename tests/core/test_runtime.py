"""A serving process tunes Python's garbage collector (pocare.core.runtime): the entry points apply it,
tests and commands keep Python's defaults."""

from __future__ import annotations

import gc
import os
import subprocess
import sys

from pocare.core.runtime import SERVING_THRESHOLDS, tune_for_serving


def test_tuning_sets_the_thresholds_and_freezes_what_the_import_made():
    before = gc.get_threshold()
    try:
        assert tune_for_serving() == before
        assert gc.get_threshold() == SERVING_THRESHOLDS and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_the_wsgi_and_asgi_entry_points_serve_tuned(tmp_path):
    """What the page benchmark measures (benchmarks/pages_at_scale.py) is what `pocare serve`, a WSGI or
    an ASGI server runs: each entry point applies the tuning once the application is loaded."""
    env = {**os.environ, "DATABASE_URL": "", "POCARE_VAR_DIR": str(tmp_path)}
    for module in ("pocare.wsgi", "pocare.asgi"):
        out = subprocess.run([sys.executable, "-c", f"import gc, {module}; print(gc.get_threshold())"],
                             capture_output=True, text=True, env=env, timeout=120, check=True).stdout
        assert out.strip().splitlines()[-1] == str(SERVING_THRESHOLDS), (module, out)
