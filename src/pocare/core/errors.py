"""Refusals every app may raise and every interface (form, page, API) shows the same way."""

from __future__ import annotations


class FieldRefused(Exception):
    """The caller must change one named field (a credential, typically) before trying again.

    The API answers 403 with ``{field: [message]}`` (:mod:`pocare.core.api`); a form shows the
    message on that field. The message is safe to show."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field
