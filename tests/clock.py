"""A test clock: moves the server's clock (``django.utils.timezone.now``) forward, never back, for
the rest of one test — so a batch can be executed on the days its master file's time windows
set, the way a real batch is, while production keeps no way to backdate a record.

``tests/conftest.py`` puts the real clock back after every test.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from unittest import mock

from django.utils import timezone

_real_now = timezone.now
_state: dict[str, Any] = {"offset": dt.timedelta(0), "patch": None}


def now() -> dt.datetime:
    return _real_now() + _state["offset"]


def advance_to(at: dt.datetime) -> None:
    """The clock reads ``at`` now (when ``at`` is later than the clock; it never goes back)."""
    current = now()
    if at <= current:
        return
    _state["offset"] += at - current
    if _state["patch"] is None:
        _state["patch"] = mock.patch.object(timezone, "now", now)
        _state["patch"].start()


def advance(by: dt.timedelta) -> None:
    advance_to(now() + by)


def reset() -> None:
    if _state["patch"] is not None:
        _state["patch"].stop()
    _state["patch"], _state["offset"] = None, dt.timedelta(0)
