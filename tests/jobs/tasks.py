"""Tasks for the jobs tests (named by dotted path, as every task is)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from pocare.jobs.files import JobFile
from pocare.jobs.tasks import Unrecoverable, task


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


@task(max_tries=3)
def make_file(*, text: str, name: str = "report.txt") -> JobFile:
    """Makes a small text file (what a bundle or a report job does, without the domain)."""
    return JobFile(content=text.encode(), download_name=name, content_type="text/plain; charset=utf-8",
                   summary={"lines": text.count("\n")})


@task(max_tries=3)
def cannot(*, why: str) -> None:
    """Fails in a way another try would not mend."""
    raise Unrecoverable(why)
