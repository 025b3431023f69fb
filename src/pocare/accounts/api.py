"""People, roles and machine tokens over the API."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from pocare.accounts import selectors, services
from pocare.accounts.api_auth import SIGNED_IN
from pocare.accounts.filters import PersonFilter, TokenFilter
from pocare.accounts.models import ApiToken, Membership, TokenScope, User
from pocare.accounts.roles import Perm


class MembershipSerializer(serializers.ModelSerializer[Membership]):
    site = serializers.CharField(source="site.code")
    role_display = serializers.CharField(source="get_role_display")

    class Meta:
        model = Membership
        fields = ["id", "role", "role_display", "site", "granted_at", "valid_until", "revoked_at"]


class UserSerializer(serializers.ModelSerializer[User]):
    memberships = MembershipSerializer(many=True, read_only=True)

    class Meta:
        model = User
        fields = ["id", "username", "printed_name", "email", "is_active", "locked_at", "memberships"]


class MeSerializer(serializers.Serializer[Any]):
    user = UserSerializer()
    permissions = serializers.ListField(child=serializers.CharField())
    network_wide = serializers.BooleanField()


class Me(APIView):
    """Who the caller is, their roles and what they may do."""

    required_perm = None

    def get_permissions(self) -> list[Any]:
        return [IsAuthenticated()]

    @extend_schema(responses={200: MeSerializer})
    def get(self, request: Request) -> Response:
        return Response({
            "user": UserSerializer(request.user).data,  # type: ignore[arg-type]
            "permissions": sorted(selectors.perms_of(request.user)),
            "network_wide": selectors.is_network_user(request.user),
        })


def _people_visible(viewer: Any) -> Any:
    """People the viewer may see, each with their roles at the sites the viewer may see only."""
    return selectors.users_visible(viewer).prefetch_related(
        Prefetch("memberships", queryset=selectors.memberships_visible(viewer)))


class UserList(generics.ListAPIView[User]):
    """People the caller may see, filtered like the people page (``q``, ``site``, ``role``, ``active``,
    ``sort``)."""

    required_perm = Perm.ACCOUNTS_VIEW
    serializer_class = UserSerializer
    filterset_class = PersonFilter

    def get_queryset(self) -> Any:
        return _people_visible(self.request.user)


class UserDetail(generics.RetrieveAPIView[User]):
    required_perm = Perm.ACCOUNTS_VIEW
    serializer_class = UserSerializer

    def get_queryset(self) -> Any:
        return _people_visible(self.request.user)


class TokenSerializer(serializers.ModelSerializer[ApiToken]):
    user = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "user", "scope", "created_at", "expires_at", "revoked_at",
                  "last_used_at", "last_used_ip"]


class TokenIssue(serializers.Serializer[Any]):
    user = serializers.CharField(max_length=150, help_text="User id the client acts as")
    name = serializers.CharField(max_length=100, help_text="Which device or system uses it")
    scope = serializers.ChoiceField(choices=TokenScope.choices, default=TokenScope.WRITE,
                                    help_text="'read' tokens are refused every change")
    days = serializers.IntegerField(required=False, min_value=1, max_value=36500,
                                    help_text="Life in days (default 90; at most POCARE_TOKEN_MAX_AGE_DAYS)")
    reason = serializers.CharField(max_length=1000)


class TokenIssued(TokenSerializer):
    key = serializers.CharField(read_only=True, help_text="Shown once; store it in the client.")

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "key"]


class TokenList(generics.ListAPIView[ApiToken]):
    """Machine tokens: the caller's own (Control Site QA: everyone's), with expiry, scope and last
    use. POST issues one (Control Site QA); the key is in that response only."""

    required_perm = SIGNED_IN
    write_perm = Perm.ACCOUNTS_MANAGE
    serializer_class = TokenSerializer
    filterset_class = TokenFilter

    def get_queryset(self) -> Any:
        return selectors.tokens_visible(self.request.user).select_related("user")

    @extend_schema(request=TokenIssue, responses={201: TokenIssued})
    def post(self, request: Request) -> Response:
        data = TokenIssue(data=request.data)
        data.is_valid(raise_exception=True)
        user = User.objects.filter(username=data.validated_data["user"], is_active=True).first()
        if user is None:
            return Response({"user": ["No active user with this user id."]}, status=status.HTTP_400_BAD_REQUEST)
        token, key = services.token_issue(actor=request.user, user=user,  # type: ignore[arg-type]
                                          name=data.validated_data["name"], reason=data.validated_data["reason"],
                                          scope=data.validated_data["scope"], days=data.validated_data.get("days"))
        body = dict(TokenSerializer(token).data)
        body["key"] = key
        return Response(body, status=status.HTTP_201_CREATED)


class Reason(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=1000)


class TokenRevoke(APIView):
    """Revoke a token: its owner, or Control Site QA (the service checks which)."""

    required_perm = SIGNED_IN
    write_perm = SIGNED_IN

    @extend_schema(request=Reason, responses={200: TokenSerializer})
    def post(self, request: Request, pk: int) -> Response:
        token = get_object_or_404(selectors.tokens_visible(request.user), pk=pk)
        data = Reason(data=request.data)
        data.is_valid(raise_exception=True)
        services.token_revoke(actor=request.user, token=token, reason=data.validated_data["reason"])  # type: ignore[arg-type]
        return Response(TokenSerializer(token).data)


urlpatterns = [
    path("me/", Me.as_view(), name="api-me"),
    path("users/", UserList.as_view(), name="api-users"),
    path("users/<int:pk>/", UserDetail.as_view(), name="api-user"),
    path("tokens/", TokenList.as_view(), name="api-tokens"),
    path("tokens/<int:pk>/revoke/", TokenRevoke.as_view(), name="api-token-revoke"),
]
