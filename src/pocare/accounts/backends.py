"""Authentication backend that refuses locked and deactivated people."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend


class PolicyBackend(ModelBackend):
    def user_can_authenticate(self, user: Any) -> bool:
        return bool(super().user_can_authenticate(user)) and getattr(user, "locked_at", None) is None
