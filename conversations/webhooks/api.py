"""``/v1/webhooks``: a tenant admin registers endpoints, rotates secrets and reads the delivery log."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations.api import int_param
from conversations.webhooks.endpoints import (
    endpoint_create,
    endpoint_delete,
    endpoint_get,
    endpoint_rotate_secret,
    endpoint_update,
)
from conversations.webhooks.models import ALL_EVENTS, EVENTS, WebhookDelivery, WebhookEndpoint
from somaagent.audit import actor_from_request
from somaagent.identity import scopes as sc
from somaagent.identity.authentication import principal_of
from somaagent.serializers import StrictSerializer, StringField

ADMIN = {"GET": sc.ADMIN, "POST": sc.ADMIN, "PATCH": sc.ADMIN, "DELETE": sc.ADMIN}
WEBHOOK_ID = OpenApiParameter("webhook_id", str, OpenApiParameter.PATH)
EVENT_CHOICES = [*EVENTS, ALL_EVENTS]


class WebhookCreateSerializer(StrictSerializer):
    url = StringField(max_length=2000)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_CHOICES), min_length=1, max_length=10
    )
    description = StringField(max_length=200, required=False, allow_blank=True)
    timeout_seconds = serializers.FloatField(required=False, min_value=1.0, max_value=30.0)


class WebhookUpdateSerializer(StrictSerializer):
    url = StringField(max_length=2000, required=False)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_CHOICES), min_length=1, max_length=10, required=False
    )
    description = StringField(max_length=200, required=False, allow_blank=True)
    timeout_seconds = serializers.FloatField(required=False, min_value=1.0, max_value=30.0)
    enabled = serializers.BooleanField(required=False)


def endpoint_body(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": str(endpoint.pk),
        "url": endpoint.url,
        "events": endpoint.events,
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "timeout_seconds": endpoint.timeout_seconds,
        "created_at": endpoint.created_at.isoformat(),
    }


def delivery_body(delivery: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": str(delivery.pk),
        "event": delivery.event,
        "event_id": delivery.payload.get("id"),
        "status": delivery.status,
        "attempts": delivery.attempts,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "last_duration_ms": delivery.last_duration_ms,
        "next_attempt_at": delivery.next_attempt_at.isoformat() if delivery.status == "pending" else None,
        "created_at": delivery.created_at.isoformat(),
        "delivered_at": delivery.delivered_at.isoformat() if delivery.delivered_at else None,
    }


class WebhookListView(APIView):
    required_scopes = ADMIN

    @extend_schema(responses={200: dict}, summary="The tenant's webhook endpoints (admin scope)")
    def get(self, request: Request) -> Response:
        endpoints = WebhookEndpoint.objects.for_tenant(principal_of(request).tenant)
        return Response({"webhooks": [endpoint_body(e) for e in endpoints]})

    @extend_schema(
        request=WebhookCreateSerializer,
        responses={201: dict},
        summary="Register an https endpoint for events; the signing secret is in this answer only",
    )
    def post(self, request: Request) -> Response:
        serializer = WebhookCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        v = serializer.validated_data
        endpoint, secret = endpoint_create(
            tenant=principal_of(request).tenant,
            url=v["url"],
            events=v["events"],
            description=v.get("description", ""),
            timeout_seconds=v.get("timeout_seconds", 10.0),
            actor=actor_from_request(request),
        )
        return Response({**endpoint_body(endpoint), "secret": secret}, status=status.HTTP_201_CREATED)


class WebhookDetailView(APIView):
    required_scopes = ADMIN

    @extend_schema(responses={200: dict}, parameters=[WEBHOOK_ID], summary="One webhook endpoint")
    def get(self, request: Request, webhook_id: str) -> Response:
        return Response(
            endpoint_body(endpoint_get(tenant=principal_of(request).tenant, endpoint_id=webhook_id))
        )

    @extend_schema(
        request=WebhookUpdateSerializer,
        responses={200: dict},
        parameters=[WEBHOOK_ID],
        summary="Change an endpoint's URL, events, description, timeout or on/off",
    )
    def patch(self, request: Request, webhook_id: str) -> Response:
        endpoint = endpoint_get(tenant=principal_of(request).tenant, endpoint_id=webhook_id)
        serializer = WebhookUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = endpoint_update(
            endpoint=endpoint, changes=dict(serializer.validated_data), actor=actor_from_request(request)
        )
        return Response(endpoint_body(endpoint))

    @extend_schema(responses={204: None}, parameters=[WEBHOOK_ID], summary="Delete an endpoint and its log")
    def delete(self, request: Request, webhook_id: str) -> Response:
        endpoint = endpoint_get(tenant=principal_of(request).tenant, endpoint_id=webhook_id)
        endpoint_delete(endpoint=endpoint, actor=actor_from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookRotateView(APIView):
    required_scopes = ADMIN

    @extend_schema(
        request=None,
        responses={200: dict},
        parameters=[WEBHOOK_ID],
        summary="A new signing secret (shown once); the old one also signs for a grace period",
    )
    def post(self, request: Request, webhook_id: str) -> Response:
        endpoint = endpoint_get(tenant=principal_of(request).tenant, endpoint_id=webhook_id)
        secret = endpoint_rotate_secret(endpoint=endpoint, actor=actor_from_request(request))
        return Response({"id": str(endpoint.pk), "secret": secret})


class WebhookDeliveriesView(APIView):
    required_scopes = ADMIN

    @extend_schema(
        responses={200: dict},
        parameters=[WEBHOOK_ID, OpenApiParameter("limit", int, description="at most 200 (default 50)")],
        summary="The endpoint's delivery log, newest first",
    )
    def get(self, request: Request, webhook_id: str) -> Response:
        endpoint = endpoint_get(tenant=principal_of(request).tenant, endpoint_id=webhook_id)
        limit = int_param(request, "limit", 50, maximum=200)
        deliveries = endpoint.deliveries.order_by("-created_at")[:limit]
        return Response({"deliveries": [delivery_body(d) for d in deliveries]})
