"""Work queues: what waits for a person, each queue owned by the app that knows the work.

The home page lists every queue that holds something for the person, and the navigation shows
how many items wait in all. A queue is a selector of the owning app (``pending(user)``: the
records that wait for *this* person, scoped to the sites and permissions they hold) and a way to
show one of them (``describe(row)``: a sentence and the link to the page where the work is done).

The web shell registers the queues of the apps below it (``pocare.web.queues``); an app added
above those (patients, supply) registers its own from its ``AppConfig.ready()``. Each queue costs
one COUNT and one bounded read, whatever the amount of data: ``pending`` must return a queryset
(counted in the database) or a list built with a fixed number of queries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet

#: Items listed per queue on the home page; the count covers them all.
SHOWN = 5


@dataclass(frozen=True)
class WorkItem:
    """One thing to do: what it is, where it is done, and since or until when."""

    text: str
    url: str
    when: dt.datetime | dt.date | None = None
    zone: str = ""  # the site's time zone, to show ``when`` in
    late: bool = False

    @property
    def timed(self) -> bool:
        """A moment (shown with its zone), not a day."""
        return isinstance(self.when, dt.datetime)


@dataclass(frozen=True)
class WorkQueue:
    """A kind of work: its title, who has some (``pending``), how one item reads, where all of it is."""

    key: str
    title: str
    pending: Callable[[Any], QuerySet[Any] | Sequence[Any]]
    describe: Callable[[Any], WorkItem]
    all_url: Callable[[], str] | None = None
    when_label: str = "Since"


@dataclass(frozen=True)
class QueueView:
    queue: WorkQueue
    count: int
    items: list[WorkItem]

    @property
    def more(self) -> int:
        return self.count - len(self.items)


_QUEUES: dict[str, WorkQueue] = {}


def register(queue: WorkQueue) -> WorkQueue:
    """Add a queue (registering the same key again with the same queue changes nothing)."""
    known = _QUEUES.get(queue.key)
    if known is not None and known != queue:
        raise ImproperlyConfigured(f"The work queue {queue.key!r} is registered twice.")
    _QUEUES[queue.key] = queue
    return queue


def registered() -> list[WorkQueue]:
    return list(_QUEUES.values())


def _count(pending: QuerySet[Any] | Sequence[Any]) -> int:
    return pending.count() if isinstance(pending, QuerySet) else len(pending)


def counts(user: Any) -> dict[str, int]:
    """How many items wait for ``user`` in each queue: one COUNT per queue (none for a queue the
    person's roles rule out: its selector returns ``.none()``)."""
    return {q.key: _count(q.pending(user)) for q in registered()}


def queues_for(user: Any, known: dict[str, int] | None = None) -> list[QueueView]:
    """The queues that hold work for ``user``, with the first :data:`SHOWN` items of each."""
    known = counts(user) if known is None else known
    views = []
    for queue in registered():
        if not known.get(queue.key):
            continue
        rows = queue.pending(user)[:SHOWN]
        views.append(QueueView(queue, known[queue.key], [queue.describe(row) for row in rows]))
    return views
