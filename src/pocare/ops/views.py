"""``/health/`` and ``/metrics`` (docs/operations.md, "Monitoring").

Who sees what: anyone (a load balancer, an uptime probe) gets the overall status alone,
``{"status": "ok"}`` with 200 or ``{"status": "failing"}`` with 503; the monitoring system gets each
check with its summary and figures, and the metrics, by presenting ``Authorization: Bearer
<POCARE_MONITOR_TOKEN>`` or by calling from an address in ``POCARE_MONITOR_ADDRESSES``. Neither
says anything about a person or a record: counts, ages and the names of POCare's own parts.
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from pocare.ledger.canonical import format_timestamp
from pocare.ops.health import check_names, health_run
from pocare.ops.metrics import metrics_text

#: What the permission matrix reads: these two answer to the monitoring token, not to a role.
MONITOR = "monitor"


def monitor_allowed(request: HttpRequest) -> bool:
    """The caller holds the monitoring token or calls from a monitoring address."""
    token = settings.POCARE_MONITOR_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return True
    try:
        address = ipaddress.ip_address(str(request.META.get("REMOTE_ADDR") or ""))
    except ValueError:
        return False
    return any(address in network for network in settings.POCARE_MONITOR_NETWORKS)


@never_cache
@require_safe
def health(request: HttpRequest) -> HttpResponse:
    """200 when every check passes, 503 when one fails; ``?only=database,migrations`` runs those
    alone (what a load balancer should probe: a stale anchor is no reason to take a server out)."""
    known = check_names()
    only = None
    if "only" in request.GET:
        only = [name.strip() for name in request.GET["only"].split(",") if name.strip()]
        unknown = [name for name in only if name not in known]
        if unknown or not only:
            return JsonResponse({"only": [
                f"{'Unknown check ' + repr(unknown[0][:40]) if unknown else 'No check named'}; "
                f"name one or more of: {', '.join(known)} (comma-separated)."]}, status=400)
    started = time.perf_counter()
    checks = health_run(only)
    ok = all(check.ok for check in checks)
    body: dict[str, Any] = {"status": "ok" if ok else "failing"}
    if monitor_allowed(request):
        body |= {
            "checked_at": format_timestamp(timezone.now()),
            "seconds": round(time.perf_counter() - started, 4),
            "checks": {c.name: {"ok": c.ok, "summary": c.summary, "figures": c.figures} for c in checks},
        }
    return JsonResponse(body, status=200 if ok else 503)


health.required_perm = MONITOR  # type: ignore[attr-defined]


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus's text format, for the monitoring token or addresses only."""
    if not monitor_allowed(request):
        return JsonResponse({"detail": "Metrics are for the monitoring system: send Authorization: Bearer "
                                       "<POCARE_MONITOR_TOKEN>, or call from an address in "
                                       "POCARE_MONITOR_ADDRESSES (docs/operations.md)."}, status=403)
    return HttpResponse(metrics_text(), content_type="text/plain; version=0.0.4; charset=utf-8")


metrics.required_perm = MONITOR  # type: ignore[attr-defined]
