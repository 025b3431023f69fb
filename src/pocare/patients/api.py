"""The pathway API: referrals under the patient's pseudonym (never the identity, PAT-PRIVACY),
filtered like the navigator's page and scoped like it (the treating hospital; the Control Site)."""

from __future__ import annotations

from typing import Any

from django.urls import path
from rest_framework import generics, serializers

from pocare.accounts.roles import Perm
from pocare.patients import selectors
from pocare.patients.filters import ReferralFilter
from pocare.patients.models import Consent, EligibilityAssessment, Referral, Stage


class EligibilitySerializer(serializers.ModelSerializer[EligibilityAssessment]):
    masterfile_version = serializers.IntegerField(source="masterfile_version.number", read_only=True)

    class Meta:
        model = EligibilityAssessment
        fields = ["id", "masterfile_version", "answers", "eligible", "assessed_at"]


class ConsentSerializer(serializers.ModelSerializer[Consent]):
    document = serializers.CharField(source="document.code", read_only=True)
    version = serializers.IntegerField(source="document.version", read_only=True)
    language = serializers.CharField(source="document.language", read_only=True)
    content_hash = serializers.CharField(source="document.content_hash", read_only=True)

    class Meta:
        model = Consent
        fields = ["id", "document", "version", "language", "content_hash", "signed_at", "withdrawn_at"]


class ReferralSerializer(serializers.ModelSerializer[Referral]):
    pseudonym = serializers.CharField(source="patient.pseudonym", read_only=True)
    treating_site = serializers.CharField(source="patient.treating_site.code", read_only=True)
    language = serializers.CharField(source="patient.language", read_only=True)
    product = serializers.CharField(source="product.code", read_only=True)
    stage = serializers.CharField(read_only=True, help_text=f"One of: {', '.join(Stage.values)}. Stages after "
                                                             "booking are read from the order's records hourly.")
    order = serializers.CharField(source="order.coi", read_only=True, default=None,
                                  help_text="The therapy order's COI, once booked.")

    class Meta:
        model = Referral
        fields = ["id", "pseudonym", "treating_site", "language", "product", "indication", "weight_kg", "source",
                  "stage", "stage_changed_at", "lost_reason", "referred_at", "order", "infused_at"]


class ReferralDetailSerializer(ReferralSerializer):
    eligibility = EligibilitySerializer(many=True, read_only=True)
    consents = ConsentSerializer(many=True, read_only=True)

    class Meta(ReferralSerializer.Meta):
        fields = [*ReferralSerializer.Meta.fields, "eligibility", "consents"]


class ReferralList(generics.ListAPIView[Referral]):
    """Referrals the caller may see, filtered like the patients page (``q``, ``stage``, ``site``,
    ``product``, ``referred_from``/``referred_until``, ``sort``)."""

    required_perm = Perm.PATIENTS_VIEW
    serializer_class = ReferralSerializer
    filterset_class = ReferralFilter

    def get_queryset(self) -> Any:
        return selectors.referrals_visible(self.request.user)


class ReferralDetail(generics.RetrieveAPIView[Referral]):
    """One referral with its eligibility assessments and consents (version, language, hash)."""

    required_perm = Perm.PATIENTS_VIEW
    serializer_class = ReferralDetailSerializer

    def get_queryset(self) -> Any:
        return selectors.referrals_visible(self.request.user).prefetch_related(
            "eligibility__masterfile_version", "consents__document")


urlpatterns = [
    path("patients/referrals/", ReferralList.as_view(), name="api-patients-referrals"),
    path("patients/referrals/<int:pk>/", ReferralDetail.as_view(), name="api-patients-referral"),
]
