"""The demo clock: the demo's live record is executed through the real services, on the days a real
network would have done the work, by running each piece of work under :func:`demo_clock`.

Every service reads "now" from ``django.utils.timezone.now`` (the ledger's ``occurred_at``, a
step's time, a signature's time, the master file's ``effective_at``). Inside ``demo_clock(at)``
that function returns ``at`` plus the real time elapsed since the block began, so the clock still
runs forwards inside a block and each service checks what it always checks (plausibility,
windows, expiry) against the demo's date. Nothing in a domain app changes: production has no
parameter, setting or hook through which a record could be dated, and the patch lives only in
this module, which no domain app imports (``docs/demo.md`` says why this rather than a clock hook
in ``core``).

A field whose default is the function ``timezone.now`` itself (``default=timezone.now``, bound
when the model was defined: a membership's ``granted_at``) is given the demo clock too.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

from django.apps import apps
from django.conf import settings
from django.utils import timezone

_real_now = timezone.now


@contextmanager
def demo_clock(at: dt.datetime) -> Iterator[None]:
    """Run the block as if the server clock read ``at`` when it began (UTC-aware, not in the future).

    Refused under ``POCARE_ENV=production``: there the demo is never loaded.
    """
    if settings.PRODUCTION:
        raise RuntimeError("The demo clock is not available in production.")
    if at.tzinfo is None:
        raise ValueError("The demo clock needs a UTC-aware time.")
    real = _real_now()
    if at > real:
        raise ValueError(f"The demo clock dates work in the past only ({at.isoformat()} is after {real.isoformat()}).")
    began = time.monotonic()
    start = at.astimezone(dt.UTC)

    def now() -> dt.datetime:
        return start + dt.timedelta(seconds=time.monotonic() - began)

    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(timezone, "now", now))
        for field in _fields_defaulting_to_now():
            stack.enter_context(mock.patch.object(field, "_get_default", now))
        yield


def _fields_defaulting_to_now() -> list[Any]:
    """Model fields declared ``default=timezone.now`` (Django caches the callable as ``_get_default``)."""
    return [f for model in apps.get_models() for f in model._meta.concrete_fields if f.default is _real_now]
