"""The core HTTP API: JWTs, who am I, the tenant's API keys and budget. Thin views over services."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from somaagent import serializers as s
from somaagent.audit import actor_from_request
from somaagent.budgets.selectors import budget_status
from somaagent.errors import NotFound
from somaagent.identity import scopes as sc
from somaagent.identity.apikeys import PREFIX_PATTERN, api_key_create, api_key_revoke
from somaagent.identity.authentication import principal_of
from somaagent.identity.jwt_auth import token_obtain, token_refresh
from somaagent.identity.login_throttle import login_attempt
from somaagent.models import ApiKey

ADMIN_ONLY = {"GET": sc.ADMIN, "POST": sc.ADMIN, "DELETE": sc.ADMIN}


def key_body(key: ApiKey) -> dict[str, object]:
    return {
        "prefix": key.prefix,
        "name": key.name,
        "scopes": sorted(sc.effective_key_scopes(key.scopes)),
        "rate_limit_per_minute": key.rate_limit_per_minute,
        "created_at": key.created_at,
        "last_used_at": key.last_used_at,
        "revoked_at": key.revoked_at,
    }


class TokenObtainView(APIView):
    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        request=s.TokenObtainSerializer,
        responses={200: s.TokenPairSerializer},
        summary="Exchange a username and password for a JWT pair bound to one tenant",
    )
    def post(self, request: Request) -> Response:
        username = request.data.get("username") if isinstance(request.data, dict) else None
        login_attempt(request=request._request, username=username)  # per account and per address
        serializer = s.TokenObtainSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        v = serializer.validated_data
        body = token_obtain(
            request=request._request,
            username=v["username"],
            password=v["password"],
            tenant=v.get("tenant"),
            scopes=v.get("scopes"),
        )
        return Response(body)


class TokenRefreshView(APIView):
    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        request=s.TokenRefreshSerializer,
        responses={200: s.TokenPairSerializer},
        summary="A new access token from a refresh token (re-checks the membership)",
    )
    def post(self, request: Request) -> Response:
        serializer = s.TokenRefreshSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(token_refresh(refresh=serializer.validated_data["refresh"]))


class MeView(APIView):
    required_scopes = {"GET": None}

    @extend_schema(responses={200: s.MeSerializer}, summary="Who the credential is: tenant, role, scopes")
    def get(self, request: Request) -> Response:
        principal = principal_of(request)
        return Response(
            {
                "tenant": {"id": str(principal.tenant.pk), "name": principal.tenant.name},
                "role": principal.role,
                "scopes": sorted(principal.scopes),
                "via": principal.via,
                "key_prefix": principal.api_key.prefix if principal.api_key else None,
            }
        )


class KeyListView(APIView):
    required_scopes = ADMIN_ONLY

    @extend_schema(responses={200: s.KeyListSerializer}, summary="The tenant's API keys (admin)")
    def get(self, request: Request) -> Response:
        keys = ApiKey.objects.for_tenant(principal_of(request).tenant).order_by("-created_at")[:500]
        return Response({"keys": [key_body(k) for k in keys]})

    @extend_schema(
        request=s.KeyCreateSerializer,
        responses={201: s.KeyCreatedSerializer},
        summary="Create an API key in your tenant (admin); the key is in this answer only",
    )
    def post(self, request: Request) -> Response:
        serializer = s.KeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        v = serializer.validated_data
        principal = principal_of(request)
        key, raw = api_key_create(
            tenant=principal.tenant,
            name=v.get("name", ""),
            scopes=v.get("scopes") or [],
            rate_limit_per_minute=v.get("rate_limit_per_minute"),
            actor=actor_from_request(request),
        )
        return Response({**key_body(key), "key": raw}, status=status.HTTP_201_CREATED)


class KeyDetailView(APIView):
    required_scopes = ADMIN_ONLY

    @extend_schema(
        request=None,
        responses={200: s.KeySerializer, 404: OpenApiResponse(description="no such key in your tenant")},
        parameters=[
            OpenApiParameter("prefix", {"type": "string", "pattern": PREFIX_PATTERN}, OpenApiParameter.PATH)
        ],
        summary="Revoke one of your tenant's API keys (admin)",
    )
    def delete(self, request: Request, prefix: str) -> Response:
        key = api_key_revoke(
            prefix=prefix, tenant=principal_of(request).tenant, actor=actor_from_request(request)
        )
        if key is None:
            raise NotFound("No such API key.")
        return Response(key_body(key))


class BudgetView(APIView):
    required_scopes = {"GET": sc.ADMIN}

    @extend_schema(
        responses={200: OpenApiTypes.OBJECT},
        summary="The tenant's token budgets and what is used this day and month (admin)",
    )
    def get(self, request: Request) -> Response:
        return Response(budget_status(tenant=principal_of(request).tenant))
