"""The request (correlation) id that ties ledger events to the request or command that made them."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_request_id: ContextVar[str | None] = ContextVar("pocare_request_id", default=None)
_VALID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")


def new_request_id(prefix: str = "req") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def accept_request_id(candidate: str | None) -> str:
    """A caller-supplied X-Request-ID if it is well-formed, else a fresh one."""
    if candidate and _VALID.match(candidate):
        return candidate
    return new_request_id()


def current_request_id() -> str:
    """The id of the current request or command; one is created if none was set."""
    value = _request_id.get()
    if value is None:
        value = new_request_id("local")
        _request_id.set(value)
    return value


@contextmanager
def request_id_scope(value: str) -> Iterator[str]:
    token = _request_id.set(value)
    try:
        yield value
    finally:
        _request_id.reset(token)
