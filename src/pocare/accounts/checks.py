"""`pocare check`: hospital sign-on providers that are configured wrong, or whose secret is missing."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, register
from django.core.exceptions import ImproperlyConfigured

from pocare.accounts.oidc import providers


@register()
def sign_on_providers(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Each provider in POCARE_OIDC_PROVIDERS well formed, and its client secret readable now
    (not only at the first sign-in, in front of a person)."""
    try:
        configured = providers()
        for provider in configured.values():
            provider.client_secret()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), hint="See docs/access.md, Hospital sign-on.", id="pocare.E016")]
    return []
