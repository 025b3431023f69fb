"""Declaring a task: a function a job may name by its dotted path.

Only functions marked with :func:`task` run as jobs, so a job row (or a hostile form) cannot name
an arbitrary callable. A task takes keyword arguments that JSON can carry and returns a JSON-able
summary (shown on the jobs page) or None.

``on_failure`` names a function (dotted path, so that this low app need not import it) called with
``error=`` and the job's keyword arguments when the job is given up on — after its last try or when
its worker died on the last try — inside the transaction that records the failure: a planning run
ends failed with its finish event there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.utils.module_loading import import_string

# The marker and the failure live in core, so that the queue's sibling apps (the trail) may declare
# tasks too (pocare.core.tasks); imported here under their old names.
from pocare.core.tasks import JobFile, TaskOptions, Unrecoverable, task

__all__ = ["JobFile", "TaskOptions", "UnknownTask", "Unrecoverable", "resolve", "task"]


class UnknownTask(LookupError):
    """The dotted path names nothing importable, or something not marked with :func:`task`."""


def resolve(path: str) -> tuple[Callable[..., Any], TaskOptions]:
    """The task function a dotted path names, with its options."""
    try:
        fn = import_string(path)
    except ImportError as exc:
        raise UnknownTask(f"task: {path!r} names nothing that can be imported.") from exc
    options = getattr(fn, "pocare_task", None)
    if not isinstance(options, TaskOptions):
        raise UnknownTask(f"task: {path!r} is not a task (mark it with pocare.jobs.tasks.task).")
    return fn, options
