"""One log line and one latency observation per request (docs/operations.md, "Logs", "Metrics")."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from pocare.ops.logs import current_request, request_fields, route_name
from pocare.ops.metrics import request_observe

logger = logging.getLogger("pocare.requests")


class RequestLogMiddleware:
    """Placed right after the request id is given, so it times (nearly) the whole request; it reads
    the person and the route on the way out, once the inner middleware and the view have set them.
    Never the path: a set-password link carries its token there, and the route name says enough."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        token = current_request.set(request)
        try:
            response = self.get_response(request)
            seconds = time.perf_counter() - started
            route = route_name(request)
            request_observe(route=route, method=request.method or "", status=response.status_code, seconds=seconds)
            if logger.isEnabledFor(logging.INFO):
                fields = request_fields(request)
                logger.info("%s %s %s", request.method, route, response.status_code, extra={
                    **fields, "route": route, "method": request.method,
                    "status": response.status_code, "duration_ms": round(seconds * 1000, 1)})
            return response
        finally:
            current_request.reset(token)
