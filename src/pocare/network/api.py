"""Sites of the network over the API, scoped like the web pages."""

from __future__ import annotations

from typing import Any

from django.urls import path
from rest_framework import generics, serializers

from pocare.accounts.roles import Perm
from pocare.network.models import Site
from pocare.network.selectors import sites_visible


class SiteSerializer(serializers.ModelSerializer[Site]):
    class Meta:
        model = Site
        fields = ["id", "code", "name", "kind", "status", "facility_id", "city", "country",
                  "address", "latitude", "longitude", "time_zone", "created_at"]


class SiteList(generics.ListAPIView[Site]):
    required_perm = Perm.NETWORK_VIEW
    serializer_class = SiteSerializer

    def get_queryset(self) -> Any:
        return sites_visible(self.request.user)


class SiteDetail(generics.RetrieveAPIView[Site]):
    required_perm = Perm.NETWORK_VIEW
    serializer_class = SiteSerializer
    lookup_field = "code"

    def get_queryset(self) -> Any:
        return sites_visible(self.request.user)


urlpatterns = [
    path("sites/", SiteList.as_view(), name="api-sites"),
    path("sites/<str:code>/", SiteDetail.as_view(), name="api-site"),
]
