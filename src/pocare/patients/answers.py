"""What this app answers when a lower app asks (docs/architecture.md, "Asking upward")."""

from __future__ import annotations


def register() -> None:
    """Register this app's answers to the questions of the apps below it."""
