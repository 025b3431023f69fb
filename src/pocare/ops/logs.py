"""Structured logs: one JSON object a line on standard error, each with the request it belongs to
(docs/operations.md, "Logs").

:class:`RequestContextFilter` adds the request's id, person (username, never the printed name)
and site scope to *every* record logged while a request is served, Django's own error reports
included, so that a log line, a ledger event (which carries the same request id) and a response
(``X-Request-ID``) can be put side by side. ``pocare.ops.middleware`` writes the one line per
request on the ``pocare.requests`` logger: route name, method, status, duration.

This module is read while logging is configured, before the apps are loaded: it imports no model.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

from django.http import HttpRequest
from django.utils.functional import empty
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from pocare.core.scope import scoped_chain

#: The request being served by this thread (waitress serves each request on one thread).
current_request: ContextVar[HttpRequest | None] = ContextVar("pocare_log_request", default=None)

#: The fields every record carries (empty outside a request: commands, workers).
REQUEST_FIELDS = ("request_id", "user", "scope")


def username(request: HttpRequest, *, resolve: bool) -> str:
    """The signed-in person's username, or "" for nobody. Without ``resolve``, a person not yet
    read from the session is not read now (a log filter must not query the database: the query
    could log, and log again)."""
    user = getattr(request, "user", None)
    if user is None:
        return ""
    if not resolve and getattr(user, "_wrapped", None) is empty:
        return ""
    return str(user.get_username()) if user.is_authenticated else ""


def request_fields(request: HttpRequest, *, resolve: bool = True) -> dict[str, str]:
    session_loaded = resolve or getattr(getattr(request, "session", None), "_session_cache", None) is not None
    return {
        "request_id": str(getattr(request, "request_id", "")),
        "user": username(request, resolve=resolve),
        "scope": scoped_chain(request) if session_loaded else "",
    }


def route_name(request: HttpRequest) -> str:
    """The URL pattern's name (``manufacturing:batch``), never the path; "unmatched" for a path
    no pattern knows (a 404 before any view)."""
    match = getattr(request, "resolver_match", None)
    return (match.view_name or "unnamed") if match is not None else "unmatched"


class RequestContextFilter(logging.Filter):
    """Adds ``request_id``, ``user`` and ``scope`` to each record (empty outside a request), and
    puts the route name where Django's own request log would write the path ("Not Found: /…")."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = current_request.get()
        if request is None and isinstance(getattr(record, "request", None), HttpRequest):
            request = record.request  # type: ignore[attr-defined]  # Django's response log, after the middleware
        fields: dict[str, Any] = (request_fields(request, resolve=False) if request is not None
                                  else dict.fromkeys(REQUEST_FIELDS, ""))
        for key, value in fields.items():
            if not getattr(record, key, ""):
                setattr(record, key, value)
        if request is not None and isinstance(record.args, tuple) and request.path in record.args:
            route = route_name(request)
            record.args = tuple(route if arg == request.path else arg for arg in record.args)
        return True


class JsonLineFormatter(JsonFormatter):
    """python-json-logger's formatter, less Django's ``request`` attribute: its text is the full path
    with the query (a set-password link's token is in its path), and the fields above say which
    request it was."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, "request"])
        super().__init__(*args, **kwargs)
