"""A DRF JSON parser within the bounds: body size, nesting depth, number size, text content."""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser

from pocare.core import bounds


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


def body_limit() -> int:
    return int(getattr(settings, "DATA_UPLOAD_MAX_MEMORY_SIZE", None) or bounds.MAX_BODY_BYTES)


class BoundedJSONParser(JSONParser):
    """JSON as DRF parses it, but refused with a 4xx that names the field when it is out of bounds:
    a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (413), nesting deeper than 32, numbers with more than
    30 digits or outside a double's range, NaN/Infinity, NUL or lone surrogates in any string (400)."""

    def parse(self, stream: IO[bytes] | None, media_type: str | None = None,
              parser_context: Mapping[str, Any] | None = None) -> Any:
        if stream is None:
            return None
        limit = body_limit()
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise RequestTooLarge(f"The request body is larger than allowed: at most {limit:,} bytes.")
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.decode(raw, encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise exceptions.ParseError(f"JSON parse error - the body is not valid {encoding}: {exc}") from None
        try:
            return bounds.loads_json(text)
        except bounds.InputRefused as exc:
            raise exceptions.ParseError({exc.field: [exc.message]}) from None
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
