"""``/v1/schedules``: make, list, change, delete and run a schedule now; read its run history."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations.api import int_param
from conversations.schedules.models import Schedule, ScheduleRun
from conversations.schedules.owners import visible_to
from conversations.schedules.services import (
    ScheduleInput,
    schedule_create,
    schedule_run_now,
    schedule_update,
)
from conversations.selectors import parse_uuid
from somaagent.errors import NotFound
from somaagent.identity.authentication import principal_of
from somaagent.identity.principal import Principal
from somaagent.serializers import StrictSerializer, StringField

SCHEDULE_ID = OpenApiParameter("schedule_id", str, OpenApiParameter.PATH)


class ScheduleSerializer(StrictSerializer):
    name = StringField(max_length=120)
    message = StringField(max_length=100_000, trim_whitespace=False)
    cron = StringField(max_length=120, required=False, allow_blank=True, help_text="e.g. '0 9 * * mon-fri'")
    interval_seconds = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=31_622_400
    )
    timezone = StringField(max_length=64, required=False, help_text="IANA name, default UTC")
    session_id = serializers.UUIDField(required=False, allow_null=True, help_text="runs go to this chat")
    persona_id = serializers.UUIDField(required=False, allow_null=True)
    ends_at = serializers.DateTimeField(required=False, allow_null=True)
    missed = serializers.ChoiceField(choices=Schedule.Missed.values, required=False)
    enabled = serializers.BooleanField(required=False)

    def to_input(self) -> ScheduleInput:
        v = self.validated_data
        return ScheduleInput(
            name=v["name"],
            message=v["message"],
            cron=v.get("cron") or "",
            interval_seconds=v.get("interval_seconds"),
            timezone=v.get("timezone") or "UTC",
            session_id=v.get("session_id"),
            persona_id=v.get("persona_id"),
            ends_at=v.get("ends_at"),
            missed=v.get("missed") or Schedule.Missed.RUN_ONCE,
            enabled=v.get("enabled", True),
        )


def _yours(schedule: Schedule, principal: Principal) -> bool:
    if principal.api_key is not None:
        return schedule.owner_key_id == principal.api_key.pk
    return principal.user is not None and schedule.owner_user_id == principal.user.pk


def schedule_body(schedule: Schedule, principal: Principal) -> dict[str, Any]:
    return {
        "id": str(schedule.pk),
        "yours": _yours(schedule, principal),  # made by the caller (an admin sees the tenant's)
        "name": schedule.name,
        "message": schedule.message,
        "cron": schedule.cron or None,
        "interval_seconds": schedule.interval_seconds,
        "timezone": schedule.timezone,
        "session_id": str(schedule.session_id) if schedule.session_id else None,
        "persona_id": str(schedule.persona_id) if schedule.persona_id else None,
        "ends_at": schedule.ends_at.isoformat() if schedule.ends_at else None,
        "missed": schedule.missed,
        "enabled": schedule.enabled,
        "next_run_at": schedule.next_run_at.isoformat() if schedule.next_run_at else None,
        "consecutive_failures": schedule.consecutive_failures,
        "paused_reason": schedule.paused_reason or None,
        "created_at": schedule.created_at.isoformat(),
    }


def run_body(run: ScheduleRun) -> dict[str, Any]:
    return {
        "id": str(run.pk),
        "due_at": run.due_at.isoformat(),
        "manual": run.manual,
        "status": run.status,
        "session_id": str(run.session_id) if run.session_id else None,
        "turn_id": str(run.turn_id) if run.turn_id else None,
        "error": run.error or None,
        "tokens": run.tokens,
        "created_at": run.created_at.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "ended_at": run.ended_at.isoformat() if run.ended_at else None,
    }


def _schedule(principal: Principal, schedule_id: str) -> Schedule:
    schedule = visible_to(principal).filter(pk=parse_uuid(schedule_id, what="schedule")).first()
    if schedule is None:
        raise NotFound("No such schedule.")
    return schedule


class ScheduleListView(APIView):
    @extend_schema(responses={200: dict}, summary="Your schedules (a tenant admin's: all of the tenant's)")
    def get(self, request: Request) -> Response:
        principal = principal_of(request)
        return Response({"schedules": [schedule_body(s, principal) for s in visible_to(principal)]})

    @extend_schema(
        request=ScheduleSerializer,
        responses={201: dict},
        summary="Send a message on a cron or an interval; each run is an ordinary turn",
    )
    def post(self, request: Request) -> Response:
        serializer = ScheduleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        principal = principal_of(request)
        schedule = schedule_create(principal=principal, data=serializer.to_input())
        return Response(schedule_body(schedule, principal), status=status.HTTP_201_CREATED)


class ScheduleDetailView(APIView):
    @extend_schema(responses={200: dict}, parameters=[SCHEDULE_ID], summary="One schedule")
    def get(self, request: Request, schedule_id: str) -> Response:
        principal = principal_of(request)
        return Response(schedule_body(_schedule(principal, schedule_id), principal))

    @extend_schema(
        request=ScheduleSerializer,
        responses={200: dict},
        parameters=[SCHEDULE_ID],
        summary="Replace a schedule's settings (turning it on again clears a pause)",
    )
    def put(self, request: Request, schedule_id: str) -> Response:
        principal = principal_of(request)
        schedule = _schedule(principal, schedule_id)
        serializer = ScheduleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        updated = schedule_update(principal=principal, schedule=schedule, data=serializer.to_input())
        return Response(schedule_body(updated, principal))

    @extend_schema(
        responses={204: None}, parameters=[SCHEDULE_ID], summary="Delete a schedule and its history"
    )
    def delete(self, request: Request, schedule_id: str) -> Response:
        _schedule(principal_of(request), schedule_id).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class ScheduleRunView(APIView):
    @extend_schema(request=None, responses={202: dict}, parameters=[SCHEDULE_ID], summary="Run it now, once")
    def post(self, request: Request, schedule_id: str) -> Response:
        run = schedule_run_now(schedule=_schedule(principal_of(request), schedule_id))
        return Response(run_body(run), status=status.HTTP_202_ACCEPTED)


class ScheduleRunsView(APIView):
    @extend_schema(
        responses={200: dict},
        parameters=[SCHEDULE_ID, OpenApiParameter("limit", int, description="at most 200 (default 50)")],
        summary="The schedule's runs, newest first: due time, outcome, session, turn, tokens",
    )
    def get(self, request: Request, schedule_id: str) -> Response:
        schedule = _schedule(principal_of(request), schedule_id)
        limit = int_param(request, "limit", 50, maximum=200)
        return Response({"runs": [run_body(r) for r in schedule.runs.order_by("-due_at")[:limit]]})
