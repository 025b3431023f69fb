"""How a serving process runs Python: the garbage collector's thresholds.

CPython's defaults (700, 10, 10) make a full (generation 2) collection every few requests in a Django
process: a request allocates tens of thousands of objects, some survive a young collection because the
request still holds them, and the old generation fills with that request's cyclic garbage. Measured on
the page benchmark's data (benchmarks/README.md, "Every page, quiet"), a full collection took 140–240 ms
and came every ~10 requests: the p95 of a 70 ms API list was 270 ms. With a larger young generation
the request's garbage dies young and the full collections become rare; the same list's p95 was 92 ms.
This is the well-known tuning of long-running Django servers; it costs a few MB of memory per process.

Called by the entry points that serve (``wsgi.py``, ``asgi.py``, ``pocare serve``) and by the page
benchmark, so that what is measured is what is served. Tests and commands keep Python's defaults.
"""

from __future__ import annotations

import gc

#: Objects allocated (net) before a young collection; young collections before a middle one; middle
#: before a full one.
SERVING_THRESHOLDS = (50_000, 20, 100)


def tune_for_serving() -> tuple[int, int, int]:
    """Set the serving thresholds and move what importing the application made (modules, URL
    patterns, templates) out of the collector's sight (``gc.freeze``): it lives as long as the
    process. Returns the thresholds that were in force before."""
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVING_THRESHOLDS)
    return before
