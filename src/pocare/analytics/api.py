"""Comparability over the API, scoped like the pages: the network matrix of a version and one
site's chart data (values, limits, flagged points per rule)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.http import Http404
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from pocare.accounts.roles import Perm
from pocare.analytics import comparability as cmp
from pocare.analytics import selectors
from pocare.masterfile.models import MasterFileVersion

_VERSION = OpenApiParameter("version", int, description="Master-file version id (default: the one with most lots).")


def _version(request: Request) -> MasterFileVersion | None:
    raw = request.query_params.get("version", "")
    version = selectors.version_for(request.user, raw or None)
    if raw and version is None:
        allowed = ", ".join(str(v.pk) for v in selectors.versions(request.user))
        raise ValidationError({"version": f"{raw!r} is not a master-file version with batches; use one of: "
                                          f"{allowed or 'none yet'}."})
    return version


def _label(v: MasterFileVersion) -> dict[str, Any]:
    return {"id": v.pk, "product": v.product.code, "number": v.number}


class ComparabilityMatrix(APIView):
    """Sites × numeric attributes as the monitor last stored them: equivalent / not-equivalent /
    too-few-lots / no-reference / no-data, TOST interval, alarms, and when it was computed."""

    required_perm = Perm.ANALYTICS_VIEW

    @extend_schema(parameters=[_VERSION], responses={200: dict})
    def get(self, request: Request) -> Response:
        version = _version(request)
        if version is None:
            return Response({"version": None, "attributes": [], "sites": []})
        matrix = selectors.stored_matrix(request.user, version)
        return Response({
            "version": _label(version), "computed_at": matrix.computed_at, "lots": matrix.network_lots,
            "policy": {"recent_lots": cmp.RECENT_LOTS, "baseline_lots": cmp.BASELINE_LOTS,
                       "min_test_lots": cmp.MIN_TEST_LOTS, "signal_rules": list(cmp.SIGNAL_RULES)},
            "attributes": [{"id": a["id"], "name": a["name"], "unit": a["unit"], "lots": a["lots"],
                            "inputs_hash": a["inputs_hash"],
                            "anova_p": a["anova"]["p_value"] if a["anova"] else None,
                            "sigma2_between": a["anova"]["sigma2_between"] if a["anova"] else None}
                           for a in matrix.attributes],
            "sites": [{"code": r["site"].code, "cells": {c["attribute_id"]: c for c in r["cells"]}}
                      for r in matrix.rows],
        })


class SiteCharts(APIView):
    """One site's chart data per numeric attribute as the comparability monitor last stored it (with
    ``computed_at``): values by batch, limits, flagged batches per rule, capability. Nothing is
    recomputed on a request, as on the site's page, so it costs the same with ten lots or ten thousand."""

    required_perm = Perm.ANALYTICS_VIEW

    @extend_schema(parameters=[_VERSION, OpenApiParameter("attribute", str)], responses={200: dict})
    def get(self, request: Request, code: str) -> Response:
        site = selectors.sites_visible(request.user).filter(code=code).first()
        if site is None:
            raise Http404("No such site.")
        version = _version(request)
        out: dict[str, Any] = {"site": site.code, "version": _label(version) if version else None,
                               "computed_at": None, "attributes": []}
        if version is None:
            return Response(out)
        chosen = request.query_params.get("attribute", "")
        numeric = [s.id for s in selectors.attribute_specs(version) if s.numeric]
        if chosen and chosen not in numeric:
            raise ValidationError({"attribute": f"{chosen!r} is not a numeric attribute; use one of: "
                                                f"{', '.join(numeric)}."})
        stored = selectors.stored_site(version, site)
        out["computed_at"] = stored.computed_at
        for section in stored.sections:
            spec, charts = section["spec"], section["charts"]
            if chosen and spec["id"] != chosen:
                continue
            out["attributes"].append({
                "id": spec["id"], "name": spec["name"], "unit": spec["unit"], **section["view"],
                "batches": list(charts.get("references", [])), "values": list(charts.get("values", [])),
                "limits": charts.get("limits"), "rules": charts.get("hits", []),
                "capability": charts.get("capability")})
        return Response(out)


urlpatterns = [
    path("analytics/comparability/", ComparabilityMatrix.as_view(), name="api-analytics-comparability"),
    path("analytics/sites/<str:code>/charts/", SiteCharts.as_view(), name="api-analytics-site"),
]
