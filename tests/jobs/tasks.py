"""Tasks for the jobs tests (named by dotted path, as every task is)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from pocare.jobs.tasks import task


@task(max_tries=3)
def boom(*, message: str = "boom") -> None:
    """Always fails."""
    raise RuntimeError(message)


@task(max_tries=3)
def sleepy_once(*, marker: str, seconds: float = 120.0) -> dict[str, Any]:
    """The first try writes ``marker`` (its pid) and sleeps long — long enough to be killed; a later try
    finds the marker and returns at once."""
    path = Path(marker)
    if path.exists():
        return {"first_try_pid": int(path.read_text()), "pid": os.getpid()}
    path.write_text(str(os.getpid()))
    time.sleep(seconds)
    return {"pid": os.getpid(), "slept": seconds}


@task(max_tries=1)
def mark(*, n: int, log: str) -> int:
    """Append ``n`` and this process's id to ``log`` (O_APPEND: whole lines, whoever writes)."""
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{n} {os.getpid()}\n".encode())
    finally:
        os.close(fd)
    return n


def not_a_task() -> None:
    """Importable but unmarked: a job may not name it."""
