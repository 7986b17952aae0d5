"""Every kind of door while the database is down: each answers 503 within the bound, never a 500.

The steady-traffic test (``test_outage_database.py``) sends messages; this one
knocks once on every other kind of entry while a PostgreSQL server of the
test's own is stopped: the API's reads (sessions, events, a session; ``me``
may answer from the process's cache of keys), the
OpenAI-compatible front door, the API's login (``/v1/auth/token``), the web
chat's pages and login form, the admin's pages and login form, a share link,
opening an SSE stream, opening a WebSocket (by key and by the login cookie), a
message sent on a WebSocket opened before the outage, and ``/readyz``. Under
``/v1/`` (and the WebSocket handshake) the refusal is the API's JSON error,
``database_unavailable`` with ``Retry-After``; the pages get a short text page
with ``Retry-After``; ``/readyz`` names the database. Then the database comes
back and the same doors open again, without restarting a process.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.conversations.outage_support import BOUND, manage, outage_system, own_postgres, processes
from tests.live import TERMINAL, LiveSystem, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PASSWORD = "outage-pw-" + uuid.uuid4().hex[:8]


@dataclass
class Knock:
    door: str
    status: int
    seconds: float
    content_type: str
    retry_after: str | None
    body: str


def _logged_in(system: LiveSystem, path: str, username: str) -> httpx.Client:
    """A client holding a login session (the web chat's or the admin's form)."""
    client = httpx.Client(base_url=system.url, timeout=30)
    page = client.get(path)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, page.text[:500]
    r = client.post(
        path,
        data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token.group(1)},
        headers={"Referer": f"{system.url}{path}"},
    )
    assert r.status_code == 302, (r.status_code, r.text[:500])
    return client


def _knock(door: str, call: Any) -> Knock:
    started = time.monotonic()
    try:
        r = call()
    except httpx.HTTPError as exc:
        return Knock(door, 0, time.monotonic() - started, "", None, repr(exc))
    seconds = time.monotonic() - started
    return Knock(
        door, r.status_code, seconds, r.headers.get("content-type", ""), r.headers.get("retry-after"), r.text
    )


def _ws_knock(door: str, url: str, **kwargs: Any) -> Knock:
    started = time.monotonic()
    try:
        with connect(url, open_timeout=10, **kwargs):
            return Knock(door, 101, time.monotonic() - started, "", None, "opened")
    except InvalidStatus as exc:
        r = exc.response
        return Knock(
            door,
            r.status_code,
            time.monotonic() - started,
            r.headers.get("content-type", ""),
            r.headers.get("retry-after"),
            r.body.decode(errors="replace") if r.body else "",
        )
    except Exception as exc:  # a handshake closed or broken: what a client sees, recorded
        return Knock(door, 0, time.monotonic() - started, "", None, repr(exc))


def _api_refusal(k: Knock) -> bool:
    try:
        code = json.loads(k.body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return False
    return (
        k.status == 503
        and k.content_type.startswith("application/json")
        and code == "database_unavailable"
        and k.retry_after is not None
        and int(k.retry_after) >= 1
    )


def _page_refusal(k: Knock) -> bool:
    return (
        k.status == 503
        and k.content_type.startswith("text/plain")
        and k.retry_after is not None
        and "<html" not in k.body.lower()
    )


def test_every_kind_of_door_refuses_cleanly_while_the_database_is_down() -> None:
    username = f"admin-{uuid.uuid4().hex[:6]}"
    with own_postgres("doors") as (pg, url, key):
        manage(
            url,
            "shell",
            "-c",
            "from django.contrib.auth import get_user_model; "
            f"get_user_model().objects.create_superuser({username!r}, 'a@example.com', {PASSWORD!r})",
        )
        with outage_system({"DATABASE_URL": url}, beat=False) as system:
            api = system.client(key)
            first = api.post("/v1/session/message", json={"message": "before [[tokens=2]]"}).json()
            sid = first["session_id"]
            share = api.post(f"/v1/sessions/{sid}/shares", json={}).json()
            share_path = share.get("url") or f"/s/{share['token']}/"
            share_path = share_path.replace(system.url, "")
            chat = _logged_in(system, "/login/", username)
            admin = _logged_in(system, "/admin/login/?next=/admin/", username)
            ws_base = f"ws://127.0.0.1:{system.port}/ws/sessions/{sid}/"
            open_ws = connect(
                f"{ws_base}?after=0",
                additional_headers={"Authorization": f"Bearer {key}"},
                open_timeout=10,
            )
            wait_until(
                lambda: api.get(f"/v1/sessions/{sid}/events").json()["events"][-1]["type"] in TERMINAL,
                timeout=60,
                what="the first reply",
            )
            anonymous = httpx.Client(base_url=system.url, timeout=30)
            form = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', anonymous.get("/login/").text)
            assert form, "no login form"
            login_form = {
                "username": username,
                "password": PASSWORD,
                "csrfmiddlewaretoken": form.group(1),
            }
            referer = {"Referer": f"{system.url}/login/"}
            cookie = "; ".join(f"{k}={v}" for k, v in chat.cookies.items())
            token_form = {"username": username, "password": PASSWORD}

            def socket_message() -> Knock:
                started = time.monotonic()
                open_ws.send(json.dumps({"type": "message", "message": "on the socket", "ref": "r1"}))
                frame: dict[str, Any] = {}
                while frame.get("ref") != "r1":
                    frame = json.loads(open_ws.recv(timeout=10))
                body = json.dumps(frame)
                return Knock(
                    "ws message", int(frame.get("status", 0)), time.monotonic() - started, "", None, body
                )

            doors: list[tuple[str, Any]] = [
                ("accept", lambda: api.post("/v1/session/message", json={"message": "hi"})),
                ("sessions list", lambda: api.get("/v1/sessions")),
                ("a session", lambda: api.get(f"/v1/sessions/{sid}")),
                ("events", lambda: api.get(f"/v1/sessions/{sid}/events")),
                ("me", lambda: api.get("/v1/me")),
                (
                    "openai chat",
                    lambda: api.post(
                        "/v1/chat/completions",
                        json={"model": "somaagent", "messages": [{"role": "user", "content": "hi"}]},
                    ),
                ),
                ("openai models", lambda: api.get("/v1/models")),
                ("api login", lambda: anonymous.post("/v1/auth/token", json=token_form)),
                ("sse open", lambda: api.get(f"/v1/sessions/{sid}/stream", params={"after": 9})),
                ("chat page", lambda: chat.get("/")),
                ("chat session page", lambda: chat.get(f"/c/{sid}/")),
                ("chat api by cookie", lambda: chat.get("/v1/sessions")),
                ("chat login", lambda: anonymous.post("/login/", data=login_form, headers=referer)),
                ("admin page", lambda: admin.get("/admin/")),
                ("admin list", lambda: admin.get("/admin/auth/user/")),
                (
                    "admin login",
                    lambda: anonymous.post("/admin/login/", data=login_form, headers=referer),
                ),
                ("share link", lambda: anonymous.get(share_path)),
            ]

            def knock_all() -> list[Knock]:
                knocks = [socket_message()]
                knocks += [_knock(name, call) for name, call in doors]
                knocks.append(
                    _ws_knock(
                        "ws open by key",
                        f"{ws_base}?after=0",
                        additional_headers={"Authorization": f"Bearer {key}"},
                    )
                )
                knocks.append(
                    _ws_knock(
                        "ws open by cookie",
                        f"{ws_base}?after=0",
                        additional_headers={"Cookie": cookie},
                        origin=system.url,
                    )
                )
                for k in knocks:
                    print(f"{k.door:20} {k.status} {k.seconds:5.2f}s {k.content_type:30} {k.body[:90]!r}")
                return knocks

            pg.stop()
            try:
                time.sleep(1)
                down = knock_all()
                ready = _knock("readyz", lambda: anonymous.get("/readyz"))
            finally:
                pg.start()
            up_at = time.monotonic()
            print("readyz", ready.status, ready.body[:300])
            slow = [(k.door, round(k.seconds, 2)) for k in down if k.seconds > BOUND]
            pages = {"chat page", "chat session page", "chat login", "admin page", "admin list"}
            pages |= {"admin login", "share link"}
            wrong = [
                (k.door, k.status, k.content_type, k.body[:200])
                for k in down
                if k.door not in pages | {"ws message", "me"} and not _api_refusal(k)
            ]
            wrong += [
                (k.door, k.status, k.content_type, k.body[:200])
                for k in down
                if k.door in pages and not _page_refusal(k)
            ]
            # /v1/me needs no database while the key is in the process's cache: it may answer.
            me = next(k for k in down if k.door == "me")
            if me.status != 200 and not _api_refusal(me):
                wrong.append((me.door, me.status, me.content_type, me.body[:200]))
            socket = next(k for k in down if k.door == "ws message")
            if not (socket.status == 503 and "database_unavailable" in socket.body):
                wrong.append((socket.door, socket.status, "", socket.body[:200]))
            assert not slow and not wrong, {"slow": slow, "wrong": wrong}
            assert ready.status == 503 and json.loads(ready.body)["checks"]["database"]["ok"] is False

            # Back: the same processes open every door again.
            wait_until(lambda: api.get("/v1/sessions").status_code == 200, timeout=30, what="the API again")
            print(f"RECOVERY {time.monotonic() - up_at:.2f} s: the API answers again")
            assert chat.get("/").status_code == 200
            assert admin.get("/admin/").status_code == 200
            assert (
                _ws_knock(
                    "ws", f"{ws_base}?after=0", additional_headers={"Authorization": f"Bearer {key}"}
                ).status
                == 101
            )
            open_ws.close()
            assert all(p.alive() for p in processes(system))
