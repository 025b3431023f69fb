"""What every API module shares: errors that are always JSON and always a 4xx for what the caller
did wrong (never a 500 for bad input), and one pagination. Named in settings.REST_FRAMEWORK."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from pocare.core.errors import FieldRefused


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Turn a service's Django ValidationError into a 400 that names the field, and a refusal that
    names a field (a wrong or missing signing credential) into a 403 that names it."""
    if isinstance(exc, FieldRefused):
        return Response({exc.field: [str(exc)]}, status=status.HTTP_403_FORBIDDEN)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    return drf_exception_handler(exc, context)


class Pagination(LimitOffsetPagination):
    """Limit/offset, with bounds so no request can ask the database for the absurd."""

    default_limit = 50
    max_limit = 1000
    max_offset = 10**12  # far beyond any table; keeps the value inside a 64-bit integer

    def get_offset(self, request: Request) -> int:
        return min(super().get_offset(request), self.max_offset)
