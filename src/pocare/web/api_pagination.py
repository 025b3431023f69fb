"""API pagination: limit/offset, with bounds so no request can ask the database for the absurd."""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request


class Pagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 1000
    max_offset = 10**12  # far beyond any table; keeps the value inside a 64-bit integer

    def get_offset(self, request: Request) -> int:
        return min(super().get_offset(request), self.max_offset)
