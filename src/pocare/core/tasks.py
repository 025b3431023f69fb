"""Declaring work that runs as a job, for every app — the queue's sibling apps too (docs/jobs.md).

The queue (``pocare.jobs``) sits in layer 2 beside the audit trail (``pocare.trail``), which may not
import it (``.importlinter``: siblings are independent). So what a task needs to *declare* itself lives
here, in core, below both: the :func:`task` marker (``pocare.jobs.tasks`` re-exports it), the
:class:`Unrecoverable` failure, the :class:`JobFile` a file-making task returns, and the question
:data:`JOB_ENQUEUE`, by which an app that may not import the queue asks it to queue a job in the
caller's transaction (the queue answers from its ``AppConfig.ready()``: ``pocare.jobs.services.job_enqueue``)::

    from pocare.core.tasks import JOB_ENQUEUE
    job = JOB_ENQUEUE.ask_one(task="pocare.trail.tasks.trail_export_work", kwargs={...}, actor=user, label="...")
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pocare.core.registry import Question

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class TaskOptions:
    max_tries: int = 3
    on_failure: str = ""
    label: str = ""
    #: A template of the task's app that shows a done job's result (a JSON object, as ``result``) on the
    #: job's page, instead of the raw JSON: the queue shows what the task made without knowing the app.
    result_template: str = ""


def task(*, max_tries: int = 3, on_failure: str = "", label: str = "", result_template: str = "") -> Callable[[F], F]:
    """Mark a function as a task that jobs may name by its dotted path (``pocare.jobs.tasks``)."""
    if max_tries < 1:
        raise ValueError("max_tries: a task is tried at least once.")

    def mark(fn: F) -> F:
        options = TaskOptions(max_tries=max_tries, on_failure=on_failure, label=label, result_template=result_template)
        fn.pocare_task = options  # type: ignore[attr-defined]
        return fn

    return mark


class Unrecoverable(Exception):
    """A failure that another try cannot mend (the PDF engine is not installed, the person who asked
    may no longer see the record): a task raises it (or a subclass) and its job fails at once, with this
    message as its error, instead of being tried again."""


@dataclass(frozen=True)
class JobFile:
    """What a file-making task returns: the file, the name it downloads as, and its content type.
    ``summary`` is kept as the job's result (shown on its page), beside the file's name, size and hash
    (``pocare.jobs.files`` stores it)."""

    content: bytes
    download_name: str
    content_type: str
    summary: dict[str, Any] = field(default_factory=dict)


#: Queue a job in the caller's transaction: ``ask_one(task=, kwargs=, actor=, label=, site_code=)``
#: returns the job (a ``pocare.jobs.models.Job``). Answered by the queue.
JOB_ENQUEUE: Question[Any] = Question(
    "core.job_enqueue",
    "Queue a job (task by dotted path, JSON kwargs, the person who asked) in the caller's transaction.",
    single=True,
)
