"""Schedules (issue 19): cron and intervals in a time zone, once per due time, failures pause."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from conversations.models import Session, Turn
from conversations.schedules.models import Schedule, ScheduleRun
from conversations.schedules.services import render, schedule_tick
from conversations.schedules.timing import cron_next, cron_parse, zone
from somaagent.errors import ValidationFailed
from somaagent.flags.services import flag_set
from somaagent.identity.apikeys import api_key_revoke
from tests.conftest import make_tenant_key
from tests.conversations.api_support import Api, assert_error
from tests.live import beats_paused

PARIS = zone("Europe/Paris")


@pytest.fixture
def no_live_beat() -> Iterator[None]:
    """Tests that tick in process with committed data: no live system's beat ticks beside them
    (it would lock and start their waiting runs with its own, older, view of flags and policy)."""
    with beats_paused():
        yield


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def _nexts(expression: str, tz: Any, after: datetime, n: int) -> list[str]:
    cron, out = cron_parse(expression), []
    for _ in range(n):
        found = cron_next(cron, tz, after)
        assert found is not None
        out.append(found.astimezone(tz).strftime("%a %Y-%m-%d %H:%M %Z"))
        after = found
    return out


def test_weekday_mornings_in_a_time_zone() -> None:
    assert _nexts("0 9 * * mon-fri", PARIS, _utc(2026, 12, 4, 10, 0), 3) == [
        "Mon 2026-12-07 09:00 CET",
        "Tue 2026-12-08 09:00 CET",
        "Wed 2026-12-09 09:00 CET",
    ]


def test_a_wall_time_the_clock_skips_is_not_due_and_one_it_repeats_is_due_once() -> None:
    # Paris springs forward on 2026-03-29 (02:00 → 03:00): 02:30 does not exist that day.
    assert _nexts("30 2 * * *", PARIS, _utc(2026, 3, 27, 12, 0), 3) == [
        "Sat 2026-03-28 02:30 CET",
        "Mon 2026-03-30 02:30 CEST",
        "Tue 2026-03-31 02:30 CEST",
    ]
    # It falls back on 2026-10-25 (03:00 → 02:00): 02:30 happens twice, the run once.
    assert _nexts("30 2 * * *", PARIS, _utc(2026, 10, 24, 12, 0), 2) == [
        "Sun 2026-10-25 02:30 CEST",
        "Mon 2026-10-26 02:30 CET",
    ]
    # Every hour across the fall-back: the repeated hour is not run twice.
    hours = _nexts("0 * * * *", PARIS, _utc(2026, 10, 24, 22, 30), 5)
    assert hours == [
        "Sun 2026-10-25 01:00 CEST",
        "Sun 2026-10-25 02:00 CEST",
        "Sun 2026-10-25 03:00 CET",
        "Sun 2026-10-25 04:00 CET",
        "Sun 2026-10-25 05:00 CET",
    ]


def test_day_of_month_or_day_of_week_when_both_are_given() -> None:
    # The 1st of the month, or any Friday (as cron has always read it).
    assert _nexts("0 12 1 * fri", zone("UTC"), _utc(2026, 12, 1, 13, 0), 3) == [
        "Fri 2026-12-04 12:00 UTC",
        "Fri 2026-12-11 12:00 UTC",
        "Fri 2026-12-18 12:00 UTC",
    ]
    assert cron_next(cron_parse("0 0 30 2 *"), PARIS, _utc(2026, 1, 1)) is None  # February 30th


@pytest.mark.parametrize("bad", ["", "* * * *", "61 * * * *", "* 25 * * *", "* * * * funday", "a b c d e"])
def test_bad_cron_is_refused(bad: str) -> None:
    with pytest.raises(ValidationFailed):
        cron_parse(bad)


def test_the_message_names_its_due_time_without_format_surprises() -> None:
    due = _utc(2026, 12, 7, 8, 0)
    assert render("Digest for {date} at {time}", due, "Europe/Paris") == "Digest for 2026-12-07 at 09:00"
    assert render("{0} {__class__} {datetime}", due, "UTC") == "{0} {__class__} 2026-12-07 08:00 UTC"


# --- the API ------------------------------------------------------------------------------------


def _create(api: Api, **body: Any) -> Any:
    return api.call("post", "/v1/schedules", json_body={"name": "Digest", "message": "News {date}", **body})


@pytest.mark.django_db
def test_make_read_change_and_delete_a_schedule(api: Api, me: Any) -> None:
    made = _create(api, cron="0 9 * * mon-fri", timezone="Europe/Paris")
    assert made.status_code == 201, made.content
    body = json.loads(made.content)
    assert body["cron"] == "0 9 * * mon-fri" and body["enabled"] is True
    next_run = datetime.fromisoformat(body["next_run_at"]).astimezone(PARIS)
    assert (next_run.hour, next_run.minute) == (9, 0) and next_run.weekday() < 5
    assert [s["id"] for s in json.loads(api.call("get", "/v1/schedules").content)["schedules"]] == [
        body["id"]
    ]
    changed = api.call(
        "put",
        f"/v1/schedules/{body['id']}",
        json_body={"name": "Hourly", "message": "x", "interval_seconds": 3600},
    )
    assert changed.status_code == 200 and json.loads(changed.content)["cron"] is None
    assert api.call("delete", f"/v1/schedules/{body['id']}").status_code == 204
    assert_error(api.call("get", f"/v1/schedules/{body['id']}"), 404, "not_found")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {"cron": "0 9 * * *", "interval_seconds": 60},  # both
        {},  # neither
        {"cron": "every morning"},
        {"interval_seconds": 5},  # below the minimum (60 s)
        {"cron": "0 9 * * *", "timezone": "Mars/Olympus"},
        {"cron": "0 9 * * *", "missed": "sometimes"},
        {"cron": "0 9 * * *", "surprise": 1},
        {"cron": "0 9 * * *", "session_id": "00000000-0000-0000-0000-000000000000"},  # not yours: 404
    ],
)
def test_bad_schedules_are_refused_and_nothing_is_stored(api: Api, body: Any) -> None:
    response = _create(api, **body)
    assert response.status_code in (400, 404), response.content
    assert Schedule.objects.count() == 0


@pytest.mark.django_db
def test_another_tenants_schedules_are_not_found(api: Api) -> None:
    made = json.loads(_create(api, cron="0 9 * * *").content)
    other = Api(key=make_tenant_key().key)
    assert json.loads(other.call("get", "/v1/schedules").content)["schedules"] == []
    for method, path in [
        ("get", f"/v1/schedules/{made['id']}"),
        ("delete", f"/v1/schedules/{made['id']}"),
        ("post", f"/v1/schedules/{made['id']}/run"),
        ("get", f"/v1/schedules/{made['id']}/runs"),
    ]:
        assert_error(other.call(method, path), 404, "not_found")
    assert Schedule.objects.filter(pk=made["id"]).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_live_beat")
def test_staff_can_turn_a_tenants_schedules_off(api: Api, me: Any) -> None:
    from somaagent.flags import services as flag_services

    made = _schedule(api, cron="0 9 * * *")
    flag_set(name="schedules", enabled=False, tenant=me.tenant)
    flag_services._cache.snapshot = None  # as if this process's refresh period had passed
    assert_error(_create(api, cron="0 9 * * *"), 403, "schedules_disabled")
    assert Schedule.objects.filter(tenant=me.tenant).count() == 1
    # "Run now" says so at once (rather than a run refused later that counts as a failure).
    assert_error(api.call("post", f"/v1/schedules/{made.pk}/run"), 403, "schedules_disabled")
    assert not ScheduleRun.objects.filter(schedule=made).exists()
    Schedule.objects.filter(pk=made.pk).delete()


# --- running --------------------------------------------------------------------------------------


def _schedule(api: Api, **body: Any) -> Schedule:
    made = _create(api, **body)
    assert made.status_code == 201, made.content
    return Schedule.objects.get(pk=json.loads(made.content)["id"])


def _first_due(schedule: Schedule) -> datetime:
    assert schedule.next_run_at is not None
    return schedule.next_run_at


@pytest.mark.django_db
def test_a_due_schedule_runs_once_per_due_time(api: Api, me: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOMA_SCHEDULE_MIN_INTERVAL_SECONDS", "1")
    schedule = _schedule(api, interval_seconds=60, message="Ping {time}")
    now = _first_due(schedule) + timedelta(seconds=1)
    assert schedule_tick(now=now) == 1
    assert schedule_tick(now=now) == 0, "the same due time again: nothing"
    [run] = ScheduleRun.objects.filter(schedule=schedule)
    assert run.due_at == schedule.next_run_at and run.status == "queued"
    turn = Turn.objects.get(pk=str(run.turn_id))
    assert turn.user_event.payload["message"].startswith("Ping ")
    assert turn.user_event.payload["metadata"]["schedule_run"] == str(run.pk)
    schedule.refresh_from_db()
    assert schedule.next_run_at == run.due_at + timedelta(seconds=60)
    assert Session.objects.get(pk=str(run.session_id)).tenant_id == me.tenant.pk


@pytest.mark.django_db
def test_a_due_time_moved_back_onto_one_already_run_runs_no_second_time(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOMA_SCHEDULE_MIN_INTERVAL_SECONDS", "1")
    schedule = _schedule(api, interval_seconds=60)
    due = _first_due(schedule)
    assert schedule_tick(now=due) == 1
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=due)  # staff moved it back
    assert schedule_tick(now=due) == 0
    assert ScheduleRun.objects.filter(schedule=schedule).count() == 1
    schedule.refresh_from_db()
    assert schedule.next_run_at == due + timedelta(seconds=60), "and it moves on"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("policy", "runs", "statuses"), [("run_once", 1, ["queued"]), ("skip", 0, ["skipped"])]
)
def test_due_times_missed_while_down_run_once_or_are_skipped(
    api: Api, monkeypatch: pytest.MonkeyPatch, policy: str, runs: int, statuses: list[str]
) -> None:
    monkeypatch.setenv("SOMA_SCHEDULE_MIN_INTERVAL_SECONDS", "1")
    schedule = _schedule(api, interval_seconds=60, missed=policy)
    now = _first_due(schedule) + timedelta(hours=2)  # 120 due times passed while everything was down
    assert schedule_tick(now=now) == runs
    assert list(ScheduleRun.objects.filter(schedule=schedule).values_list("status", flat=True)) == statuses
    assert Turn.objects.count() == runs
    schedule.refresh_from_db()
    assert now < _first_due(schedule) <= now + timedelta(seconds=60)


@pytest.mark.django_db
def test_a_schedule_past_its_end_stops(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOMA_SCHEDULE_MIN_INTERVAL_SECONDS", "1")
    ends = timezone.now() + timedelta(seconds=90)
    schedule = _schedule(api, interval_seconds=60, ends_at=ends.isoformat())
    assert schedule_tick(now=_first_due(schedule)) == 1
    schedule.refresh_from_db()
    assert schedule.enabled is False and schedule.next_run_at is None


@pytest.mark.django_db
def test_runs_that_are_refused_pause_the_schedule_after_three(api: Api, me: Any) -> None:
    schedule = _schedule(api, cron="* * * * *")
    assert schedule.owner_key is not None
    api_key_revoke(prefix=schedule.owner_key.prefix, tenant=me.tenant)
    start = timezone.now()
    for minute in range(3):  # three ticks a minute apart, each with its own due time
        at = start + timedelta(minutes=minute)
        Schedule.objects.filter(pk=schedule.pk).update(next_run_at=at - timedelta(seconds=1))
        schedule_tick(now=at)
    runs = list(ScheduleRun.objects.filter(schedule=schedule).order_by("due_at"))
    assert [r.status for r in runs] == ["refused"] * 3 and "revoked" in runs[0].error
    schedule.refresh_from_db()
    assert schedule.enabled is False and schedule.paused_reason.startswith("Paused after 3 failed runs")
    assert Turn.objects.count() == 0
    body = json.loads(Api(key=make_tenant_key().key).call("get", "/v1/schedules").content)
    assert body["schedules"] == []


@pytest.mark.django_db
def test_run_now_and_the_run_history(api: Api) -> None:
    schedule = _schedule(api, cron="0 9 1 1 *")
    ran = api.call("post", f"/v1/schedules/{schedule.pk}/run")
    assert ran.status_code == 202, ran.content
    run = json.loads(ran.content)
    assert run["manual"] is True and run["status"] == "waiting" and run["turn_id"] is None
    assert schedule_tick() == 1  # it waits for a slot like any run; the next tick starts it
    history = json.loads(api.call("get", f"/v1/schedules/{schedule.pk}/runs").content)["runs"]
    assert [(r["id"], r["status"]) for r in history] == [(run["id"], "queued")] and history[0]["turn_id"]


def _waiting(schedule: Schedule, n: int) -> None:
    start = timezone.now() - timedelta(hours=1)
    ScheduleRun.objects.bulk_create(
        ScheduleRun(schedule=schedule, tenant_id=schedule.tenant_id, due_at=start + timedelta(seconds=i))
        for i in range(n)
    )


def _running(tenant: Any) -> int:
    return ScheduleRun.objects.filter(tenant_id=tenant.pk, status="queued").count()


@pytest.mark.django_db
def test_background_runs_are_shared_fairly_between_tenants(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOMA_SCHEDULE_TENANT_CONCURRENCY", "2")
    monkeypatch.setenv("SOMA_SCHEDULE_MAX_RUNNING", "3")
    busy, quiet = make_tenant_key(), make_tenant_key()
    flood = _schedule(Api(key=busy.key), cron="0 9 1 1 *", name="flood")
    _waiting(flood, 50)  # a thousand due runs would do the same; fifty are enough to see it
    few = _schedule(Api(key=quiet.key), cron="0 9 1 1 *", name="few")
    _waiting(few, 3)

    for _ in range(3):  # each round: slots fill, the running runs end
        started = schedule_tick()
        assert started == 3 or (started == 2 and _running(quiet.tenant) == 0), "every free slot used"
        busy_now, quiet_now = _running(busy.tenant), _running(quiet.tenant)
        assert busy_now <= 2, "the flood takes its share only"
        assert quiet_now >= 1 or not ScheduleRun.objects.filter(schedule=few, status="waiting").exists()
        assert schedule_tick() == 0, "all slots busy: the rest wait"
        ScheduleRun.objects.filter(status="queued").update(status="completed")
    assert not ScheduleRun.objects.filter(schedule=few, status="waiting").exists(), "the quiet tenant is done"
    # Each tenant's oldest went first.
    done = list(ScheduleRun.objects.filter(schedule=flood, status="completed").order_by("due_at"))
    first = list(ScheduleRun.objects.filter(schedule=flood).order_by("due_at")[: len(done)])
    assert done == first


@pytest.mark.django_db
def test_a_run_whose_chat_was_deleted_frees_its_slot_in_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOMA_SCHEDULE_TENANT_CONCURRENCY", "1")
    me = make_tenant_key()
    schedule = _schedule(Api(key=me.key), cron="0 9 1 1 *")
    _waiting(schedule, 2)
    assert schedule_tick() == 1
    assert schedule_tick() == 0
    # Its turn went with its chat: it will never end, so after the stale period it stops counting.
    ScheduleRun.objects.filter(status="queued").update(started_at=timezone.now() - timedelta(hours=2))
    assert schedule_tick() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_live_beat")
def test_two_ticks_at_once_run_a_due_time_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two beats (or a tick that overlaps the previous one) race for the same due time."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks with SKIP LOCKED are PostgreSQL's; SQLite serialises writers anyway")
    monkeypatch.setenv("SOMA_SCHEDULE_MIN_INTERVAL_SECONDS", "1")
    me = make_tenant_key()
    api = Api(key=me.key)
    schedules = [_schedule(api, interval_seconds=3600, name=f"s{i}") for i in range(10)]
    # Their runs are refused (the owner's key is revoked), so no turn is queued: a committed turn
    # would be run by the run's live worker while the database is being flushed after the test.
    owner_key = schedules[0].owner_key
    assert owner_key is not None
    api_key_revoke(prefix=owner_key.prefix, tenant=me.tenant)  # type: ignore[arg-type]
    Schedule.objects.filter(pk__in=[s.pk for s in schedules]).update(
        next_run_at=timezone.now() - timedelta(seconds=1)
    )
    barrier = threading.Barrier(2)
    counts: list[int] = []

    def tick() -> None:
        barrier.wait()
        try:
            counts.append(schedule_tick())
        finally:
            connection.close()

    threads = [threading.Thread(target=tick) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # (The run's live beat, if one is up, may run some of them: still once each.)
    assert sum(counts) <= 10
    runs = ScheduleRun.objects.filter(schedule__in=schedules)
    assert runs.count() == 10 and len({(r.schedule_id, r.due_at) for r in runs}) == 10
    for _ in range(5):  # the rest start (and are refused) a few at a time: tenant slots
        schedule_tick()
    assert {r.status for r in runs.all()} == {"refused"}
    assert not Turn.objects.filter(tenant_id=me.tenant.pk).exists()  # type: ignore[attr-defined]
    with transaction.atomic():
        Schedule.objects.filter(pk__in=[s.pk for s in schedules]).delete()


@pytest.mark.django_db
def test_a_change_can_move_the_runs_to_a_chat_of_yours_only(api: Api, me: Any) -> None:
    schedule = _schedule(api, cron="0 9 * * *")
    mine = Session.objects.create(tenant=me.tenant)
    other: Any = make_tenant_key().tenant
    theirs = Session.objects.create(tenant=other)
    body = {"name": "Digest", "message": "x", "cron": "0 9 * * *"}
    moved = api.call("put", f"/v1/schedules/{schedule.pk}", json_body={**body, "session_id": str(mine.pk)})
    assert moved.status_code == 200 and json.loads(moved.content)["session_id"] == str(mine.pk)
    refused = api.call(
        "put", f"/v1/schedules/{schedule.pk}", json_body={**body, "session_id": str(theirs.pk)}
    )
    assert_error(refused, 404, "not_found")
    assert Schedule.objects.get(pk=schedule.pk).session_id == mine.pk


@pytest.mark.django_db
def test_staff_change_a_schedule_in_admin_and_its_next_run_follows(api: Api) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    schedule = _schedule(api, cron="0 9 * * *", timezone="UTC")
    staff = get_user_model().objects.create_user(
        username=f"staff-{schedule.pk.hex[:8]}", is_staff=True, is_superuser=True
    )
    client = Client()
    client.force_login(staff)
    url = f"/admin/conversations/schedule/{schedule.pk}/change/"
    form = {
        "tenant": str(schedule.tenant_id),
        "name": "Digest",
        "message": "x",
        "kind": "cron",
        "cron": "30 18 * * *",
        "timezone": "UTC",
        "enabled": "on",
        "missed": "run_once",
        # the run history inline's management form (it adds nothing)
        "runs-TOTAL_FORMS": "0",
        "runs-INITIAL_FORMS": "0",
    }
    refused = client.post(url, {**form, "cron": "99 99 * * *"})
    assert refused.status_code == 200 and "Not a valid cron expression" in refused.content.decode()
    saved = client.post(url, form)
    assert saved.status_code == 302, (saved.context or {}).get("errors")
    schedule.refresh_from_db()
    assert schedule.cron == "30 18 * * *"
    assert schedule.next_run_at is not None and (schedule.next_run_at.hour, schedule.next_run_at.minute) == (
        18,
        30,
    )
    assert client.get("/admin/conversations/schedule/add/").status_code == 403


@pytest.mark.django_db
def test_a_minutely_cron_down_for_a_month_runs_once_without_stepping_through_every_minute(api: Api) -> None:
    schedule = _schedule(api, cron="* * * * *")
    month_ago = timezone.now() - timedelta(days=30)
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=month_ago.replace(second=0, microsecond=0))
    assert schedule_tick() == 1
    [run] = ScheduleRun.objects.filter(schedule=schedule)
    assert run.due_at > month_ago  # a later one than the first missed, never more than one run
    schedule.refresh_from_db()
    assert schedule.next_run_at is not None and schedule.next_run_at > timezone.now()


@pytest.mark.django_db
def test_a_refused_run_is_told_to_webhooks_as_a_finished_run(api: Api, me: Any) -> None:
    """A run refused at its start (no turn: the owner's access, policy, budget) has finished too:
    receivers of ``schedule.run_finished`` hear of it, as of the ones that pause the schedule."""
    from conversations.webhooks.endpoints import endpoint_create
    from conversations.webhooks.models import WebhookDelivery
    from somaagent.audit import Actor

    endpoint_create(
        tenant=me.tenant,
        url="https://example.invalid/hook",
        events=["schedule.run_finished"],
        actor=Actor.system(),
    )
    schedule = _schedule(api, cron="0 9 1 1 *")
    ran = json.loads(api.call("post", f"/v1/schedules/{schedule.pk}/run").content)
    assert ran["status"] == "waiting"
    assert schedule.owner_key is not None
    api_key_revoke(prefix=schedule.owner_key.prefix, tenant=me.tenant)  # refused when it starts
    schedule_tick()
    [delivery] = WebhookDelivery.objects.filter(tenant_id=me.tenant.pk)
    assert delivery.event == "schedule.run_finished" and delivery.subject == ran["id"]
    data = delivery.payload["data"]
    assert data["run_id"] == ran["id"] and data["schedule_id"] == str(schedule.pk)
    assert data["status"] == "refused" and "revoked" in data["error"]
    assert data["turn_id"] is None and data["session_id"] is None


@pytest.mark.django_db
def test_failures_ending_side_by_side_each_count_towards_the_pause(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs of one schedule fail in two workers; each read the schedule before either wrote
    (as two finishing transactions do): both failures count, and the second one pauses it."""
    from conversations.schedules.outcomes import run_failed

    monkeypatch.setenv("SOMA_SCHEDULE_MAX_FAILURES", "2")
    schedule = _schedule(api, cron="0 9 1 1 *")
    seen_by_one, seen_by_other = Schedule.objects.get(pk=schedule.pk), Schedule.objects.get(pk=schedule.pk)
    run_failed(seen_by_one, "the model refused")
    run_failed(seen_by_other, "the model refused")
    schedule.refresh_from_db()
    assert schedule.consecutive_failures == 2
    assert schedule.enabled is False and schedule.paused_reason.startswith("Paused after 2 failed runs")


@pytest.mark.django_db
def test_a_persona_schedule_runs_each_time_in_a_new_chat_with_that_persona(api: Api, me: Any) -> None:
    from somaagent.models import Persona

    persona = Persona.objects.create(tenant=me.tenant, name="digest-writer")
    schedule = _schedule(api, interval_seconds=3600, persona_id=str(persona.pk), message="News for {date}")
    first = _first_due(schedule)
    assert schedule_tick(now=first) == 1
    assert schedule_tick(now=first + timedelta(hours=1)) == 1
    runs = list(ScheduleRun.objects.filter(schedule=schedule).order_by("due_at"))
    sessions = [Session.objects.get(pk=str(r.session_id)) for r in runs]
    assert len({s.pk for s in sessions}) == 2 and {s.persona_id for s in sessions} == {persona.pk}
    turn = Turn.objects.get(pk=str(runs[0].turn_id))
    assert turn.user_event.payload["message"] == f"News for {first.strftime('%Y-%m-%d')}"


@pytest.mark.django_db
def test_a_session_schedule_appends_its_runs_to_that_chat(api: Api, me: Any) -> None:
    chat = Session.objects.create(tenant=me.tenant)
    schedule = _schedule(api, interval_seconds=3600, session_id=str(chat.pk))
    first = _first_due(schedule)
    assert schedule_tick(now=first) == 1
    [run] = ScheduleRun.objects.filter(schedule=schedule)
    assert run.session_id == chat.pk and Turn.objects.get(pk=str(run.turn_id)).session_id == chat.pk


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_live_beat")
def test_policy_and_the_tenants_switch_apply_to_a_due_run(api: Api, me: Any) -> None:
    """A run is sent as its owner: the tenant's policy refuses it as it would refuse them, and
    staff turning the tenant's schedules off refuse the ones already made, at their time."""
    from somaagent.audit import Actor
    from somaagent.flags import services as flag_services
    from somaagent.policy.data import policy_data_set

    schedule = _schedule(api, interval_seconds=3600)
    first = _first_due(schedule)
    policy_data_set(
        tenant=me.tenant, document={"denied_actions": ["conversation.send"]}, actor=Actor.system("test")
    )
    schedule_tick(now=first)
    policy_data_set(tenant=me.tenant, document={}, actor=Actor.system("test"))
    flag_set(name="schedules", enabled=False, tenant=me.tenant)
    flag_services._cache.snapshot = None  # as if this process's refresh period had passed
    schedule_tick(now=first + timedelta(hours=1))
    runs = list(ScheduleRun.objects.filter(schedule=schedule).order_by("due_at"))
    assert [r.status for r in runs] == ["refused", "refused"]
    assert "turned off" in runs[1].error and "turned off" not in runs[0].error
    assert not Turn.objects.filter(tenant_id=me.tenant.pk).exists()
    Schedule.objects.filter(pk=schedule.pk).delete()


@pytest.mark.django_db
def test_runs_still_waiting_for_a_slot_do_not_start_once_the_schedule_is_off(api: Api) -> None:
    """Turned off (by its owner, by staff, or paused by its failures) means no more runs: due
    times still waiting for a background slot are skipped, not started; a "run now" still runs,
    and so does the last due time of a schedule that ended."""
    schedule = _schedule(api, cron="0 9 1 1 *")
    _waiting(schedule, 3)
    manual = json.loads(api.call("post", f"/v1/schedules/{schedule.pk}/run").content)
    body = {"name": "x", "message": "x", "cron": "0 9 1 1 *", "enabled": False}
    assert api.call("put", f"/v1/schedules/{schedule.pk}", json_body=body).status_code == 200
    assert schedule_tick() == 1
    runs = ScheduleRun.objects.filter(schedule=schedule)
    assert runs.get(pk=manual["id"]).status == "queued"
    assert sorted(runs.filter(manual=False).values_list("status", flat=True)) == ["skipped"] * 3
    assert "turned off" in runs.filter(manual=False).first().error  # type: ignore[union-attr]

    ended = _schedule(
        api, interval_seconds=3600, ends_at=(timezone.now() + timedelta(minutes=90)).isoformat()
    )
    Schedule.objects.filter(pk=ended.pk).update(
        next_run_at=None, enabled=False
    )  # its last due time became a run, then it ended
    _waiting(ended, 1)
    assert schedule_tick() == 1 and ScheduleRun.objects.get(schedule=ended).status == "queued"


@pytest.mark.django_db
def test_a_run_that_cannot_start_for_an_unforeseen_reason_holds_up_no_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run whose start raises something other than a refusal (a bug, a lost connection) is
    recorded as failed and the tick goes on: left waiting, it would be the oldest again at every
    tick and stop every tenant's schedules behind it."""
    import conversations.schedules.services as services

    real = services.message_admit_accept

    def accept(**kwargs: Any) -> Any:
        if "boom" in kwargs["data"].message:
            raise RuntimeError("unforeseen")
        return real(**kwargs)

    monkeypatch.setattr(services, "message_admit_accept", accept)
    broken_key, fine_key = make_tenant_key(), make_tenant_key()
    broken = _schedule(Api(key=broken_key.key), cron="0 9 1 1 *", message="boom")
    fine = _schedule(Api(key=fine_key.key), cron="0 9 1 1 *", message="fine")
    _waiting(broken, 1)
    _waiting(fine, 1)
    schedule_tick()
    [failed] = ScheduleRun.objects.filter(schedule=broken)
    assert failed.status == "failed" and "RuntimeError" in failed.error and failed.ended_at
    assert ScheduleRun.objects.get(schedule=fine).status == "queued"
    assert Schedule.objects.get(pk=broken.pk).consecutive_failures == 1


@pytest.mark.django_db
def test_a_schedule_says_whether_the_caller_made_it(api: Api, me: Any) -> None:
    """Keys and tenant admins see the tenant's schedules; ``yours`` tells theirs from others'
    (the web chat tells a paused schedule to the one who made it, not to every admin)."""
    from somaagent.identity.apikeys import api_key_create

    _, raw = api_key_create(
        tenant=me.tenant, name="admin", scopes=["admin", "conversations:read", "conversations:write"]
    )
    admin = Api(key=raw)
    _schedule(api, cron="0 9 * * *", name="member's")
    response = _create(admin, cron="0 9 * * *", name="admin's")
    assert response.status_code == 201, response.content
    made = json.loads(response.content)
    assert made["yours"] is True
    listed = {
        s["name"]: s["yours"] for s in json.loads(admin.call("get", "/v1/schedules").content)["schedules"]
    }
    assert listed == {"member's": False, "admin's": True}
