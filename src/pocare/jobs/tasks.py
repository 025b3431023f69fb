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
from dataclasses import dataclass
from typing import Any, TypeVar

from django.utils.module_loading import import_string

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class TaskOptions:
    max_tries: int = 3
    on_failure: str = ""
    label: str = ""


def task(*, max_tries: int = 3, on_failure: str = "", label: str = "") -> Callable[[F], F]:
    """Mark a function as a task that jobs may name (see the module's docstring)."""
    if max_tries < 1:
        raise ValueError("max_tries: a task is tried at least once.")

    def mark(fn: F) -> F:
        fn.pocare_task = TaskOptions(max_tries=max_tries, on_failure=on_failure, label=label)  # type: ignore[attr-defined]
        return fn

    return mark


class Unrecoverable(Exception):
    """A failure that another try cannot mend (the PDF engine is not installed, the person who asked
    may no longer see the record): a task raises it (or a subclass) and its job fails at once, with this
    message as its error, instead of being tried again."""


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
