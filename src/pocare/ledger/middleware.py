"""Gives every HTTP request a correlation id, echoed in the X-Request-ID response header."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from pocare.ledger.context import accept_request_id, request_id_scope


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        rid = accept_request_id(request.headers.get("X-Request-ID"))
        request.request_id = rid  # type: ignore[attr-defined]
        with request_id_scope(rid):
            response = self.get_response(request)
        response["X-Request-ID"] = rid
        return response
