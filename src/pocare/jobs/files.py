"""A job that makes a file: the inspector bundle, a PDF report, an export.

A task returns a :class:`JobFile` (the bytes, the name it downloads as, its content type and a small
summary for the job's page). The worker saves it into ``STORAGES["default"]`` (a directory all servers
reach, or S3: docs/operations.md) under an unguessable name and keeps on the job's row the stored name,
content type, size, SHA-256 and download name. ``/jobs/<id>/file/`` serves it to whoever may see the job
(the person who started it; Control Site QA), and records each download as a ledger event
(``jobs.file_downloaded``). Files are kept: they are GMP copies of records (their generation is a
ledger event carrying their hash), and a new copy is made by asking again.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import IO

from django.core.files.base import ContentFile
from django.core.files.storage import storages

from pocare.core.tasks import JobFile

__all__ = ["JobFile", "StoredFile", "file_delete", "file_open", "file_save", "safe_download_name"]

#: Where job files go inside the storage.
PREFIX = "jobs"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class StoredFile:
    name: str
    size: int
    sha256: str


def safe_download_name(name: str) -> str:
    """The download name reduced to letters, digits, dot, dash and underscore (a header value)."""
    cleaned = _UNSAFE.sub("-", name).strip(".-") or "file"
    return cleaned[:200]


def file_save(*, job_id: int, made: JobFile) -> StoredFile:
    """Save a job's file under ``jobs/<id>/<random>/<download name>``: the random part (192 bits) makes
    the stored name unguessable, and a retried job's second file never replaces its first."""
    storage = storages["default"]
    name = f"{PREFIX}/{job_id}/{secrets.token_urlsafe(24)}/{safe_download_name(made.download_name)}"
    stored = storage.save(name, ContentFile(made.content))
    return StoredFile(name=stored, size=len(made.content), sha256=hashlib.sha256(made.content).hexdigest())


def file_delete(name: str) -> None:
    """Remove a file a try saved but could not record (the job was taken back meanwhile)."""
    storages["default"].delete(name)


def file_open(name: str) -> IO[bytes]:
    opened: IO[bytes] = storages["default"].open(name, "rb")
    return opened
