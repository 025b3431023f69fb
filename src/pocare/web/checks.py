"""`pocare check --deploy`: production settings that would make POCare unusable behind its proxy."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register


@register(Tags.security, deploy=True)
def trusted_proxy_named(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """SSL redirect on and no trusted proxy: `pocare serve` speaks plain HTTP, so every request
    the TLS proxy forwards would be answered with a redirect to https, for ever. A proxy of ``*``
    believes anyone's forwarded headers."""
    if not (getattr(settings, "PRODUCTION", False) and settings.SECURE_SSL_REDIRECT):
        return []
    if settings.POCARE_TRUSTED_PROXY == "*":
        return [Warning(
            "POCARE_TRUSTED_PROXY='*' believes X-Forwarded-Proto and X-Forwarded-For from any peer: a client "
            "that reaches `pocare serve` directly can claim https and any address.",
            hint="Name the proxy's address, or make sure only the proxy can reach `pocare serve`.",
            id="pocare.W003",
        )]
    if settings.POCARE_TRUSTED_PROXY:
        return []
    return [Error(
        "POCARE_ENV=production redirects every plain-HTTP request to https, and no proxy is trusted to "
        "say a request came over https: behind a TLS proxy every page would answer 301, for ever.",
        hint="Set POCARE_TRUSTED_PROXY to the address of the TLS-terminating proxy (e.g. 127.0.0.1); "
        "see docs/access.md, Production.",
        id="pocare.E002",
    )]
