"""One world for a module's tests, built once and rolled back (the pattern of
tests/demo/test_timelines.py), for tests that only read it or whose writes no other test reads.

The world is built inside a transaction opened for the module and rolled back when the module's
last test is done, so nothing reaches another module. Each test still runs in its own savepoint,
which pytest-django rolls back after the test, so nothing one test does reaches the next either.

Building a batch moves the test clock (tests/clock.py) to the days of its steps. The clock reading
at the end of the build is kept as ``World.clock``; :func:`clock_as_built` puts the clock there
again for each test, as it was when each test built the world for itself (conftest puts the real
clock back after every test).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from django.db import connection, transaction

from tests import clock

T = TypeVar("T")


@contextmanager
def built_once(django_db_blocker: Any, build: Callable[[], T]) -> Iterator[T]:
    """``build()`` in the module's transaction; rolled back (and the real clock put back) at the end.

    The world's deferred constraints are checked once, at once: otherwise, on PostgreSQL, every
    test's teardown checks them all again (the check in a test's savepoint is undone with it).
    """
    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            world = build()
            connection.check_constraints()
            yield world
        finally:
            clock.reset()
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


def clock_at_build() -> dt.datetime:
    """The clock's reading now, at the end of a build; then the real clock, for the tests to start on."""
    at = clock.now()
    clock.reset()
    return at


def clock_as_built(at: dt.datetime) -> None:
    """Move the clock (forward only) to where the build left it."""
    clock.advance_to(at)
