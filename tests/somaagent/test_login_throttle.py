"""Password guessing is throttled on every login path, per account and per address (issue 14, item 5)."""

from __future__ import annotations

import dataclasses
import random
import time
import uuid

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client

from tests.somaagent.conftest import client_for, member, new_tenant, new_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def limits(settings):
    """3 attempts per account and 5 per address, in a window that has just begun."""
    settings.SOMA = dataclasses.replace(
        settings.SOMA, login_attempts_per_minute=3, login_attempts_per_address_per_minute=5
    )
    left = 60 - time.time() % 60
    if left < 20:  # five logins, each a password hash: seconds on a loaded machine
        time.sleep(left + 0.05)


def address() -> str:
    return f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def api_login(username: str, *, ip: str, password: str = "wrong-password") -> tuple[int, dict[str, str]]:
    response = client_for().post(
        "/v1/auth/token", {"username": username, "password": password}, format="json", REMOTE_ADDR=ip
    )
    return response.status_code, dict(response.headers)


def page_login(path: str, username: str, *, ip: str) -> tuple[int, str, dict[str, str]]:
    response = Client().post(path, {"username": username, "password": "wrong-password"}, REMOTE_ADDR=ip)
    return response.status_code, response.content.decode(), dict(response.headers)


def test_spellings_of_one_username_share_one_bucket(limits) -> None:
    name = f"alice-{uuid.uuid4().hex[:6]}"
    spellings = [f" {name}", f"{name} ", name.upper(), f"\t{name.title()}\n"]
    codes = [api_login(spelling, ip=address())[0] for spelling in spellings]  # every one from elsewhere
    assert codes[:3] == [401, 401, 401] and codes[3] == 429, codes
    status, headers = api_login(name, ip=address(), password="pw-Secret-123")
    assert status == 429 and 1 <= int(headers["Retry-After"]) <= 60


def test_one_address_trying_many_accounts_is_stopped(limits) -> None:
    ip = address()
    codes = [api_login(f"user-{uuid.uuid4().hex[:8]}", ip=ip)[0] for _ in range(6)]
    assert codes == [401] * 5 + [429], codes
    assert api_login(f"user-{uuid.uuid4().hex[:8]}", ip=address())[0] == 401  # others are not affected


def test_the_web_chat_login_page_is_throttled_with_a_clear_message(limits) -> None:
    name = f"bob-{uuid.uuid4().hex[:6]}"
    results = [page_login("/login/", name, ip=address()) for _ in range(4)]
    assert [r[0] for r in results] == [200, 200, 200, 429]
    _, body, headers = results[3]
    assert "Too many login attempts" in body and 'role="alert"' in body
    assert 1 <= int(headers["Retry-After"]) <= 60
    assert f'value="{name}"' in body  # the form comes back filled in


def test_the_admin_login_is_throttled(limits) -> None:
    name = f"carol-{uuid.uuid4().hex[:6]}"
    results = [page_login("/admin/login/", name, ip=address()) for _ in range(4)]
    assert [r[0] for r in results] == [200, 200, 200, 429]
    assert "Too many login attempts" in results[3][1] and "Retry-After" in results[3][2]


def test_the_paths_share_the_account_bucket_and_a_right_password_waits_too(limits) -> None:
    user = new_user(f"dave-{uuid.uuid4().hex[:6]}")
    member(user, new_tenant())
    assert api_login(user.username, ip=address())[0] == 401
    assert page_login("/login/", user.username, ip=address())[0] == 200
    assert page_login("/admin/login/", user.username, ip=address())[0] == 200
    assert api_login(user.username, ip=address(), password="pw-Secret-123")[0] == 429
    response = Client().post(
        "/login/", {"username": user.username, "password": "pw-Secret-123"}, REMOTE_ADDR=address()
    )
    assert response.status_code == 429 and "_auth_user_id" not in response.wsgi_request.session


def test_djangos_standard_password_validators_are_on() -> None:
    for weak in ("password1", "12345678901", "short"):
        with pytest.raises(ValidationError):
            validate_password(weak)
    user = new_user("erin-example")
    with pytest.raises(ValidationError):
        validate_password("erin-example", user=user)
    validate_password("correct-horse-battery-staple-7")


def _fullwidth(text: str, *, every: int) -> str:
    """``text`` with every ``every``-th ASCII letter in its fullwidth form (NFKC maps it back)."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isalpha() and i % every == 0 else c for i, c in enumerate(text))


def test_compatibility_spellings_the_login_pages_accept_share_the_bucket(limits) -> None:
    """Django's login form NFKC-normalises the username, so a fullwidth 'grace' logs in as 'grace': each
    such spelling must count against the one account, or they are unlimited guesses at it (without
    the shared bucket the last, right, guess logs in: 302)."""
    user = new_user(f"grace-{uuid.uuid4().hex[:6]}")
    member(user, new_tenant())
    right = {"username": _fullwidth(user.username, every=1), "password": "pw-Secret-123"}
    spellings = [_fullwidth(user.username, every=n) for n in (2, 3, 4)]
    assert len(set(spellings) | {user.username}) == 4
    assert [page_login("/login/", s, ip=address())[0] for s in spellings] == [200, 200, 200]
    response = Client().post("/login/", right, REMOTE_ADDR=address())
    assert response.status_code == 429 and "_auth_user_id" not in response.wsgi_request.session


def test_one_ipv6_host_is_its_whole_64(limits) -> None:
    """A host given a /64 can take any address in it: the address bucket is the /64."""
    third, fourth = random.randint(0, 0xFFFF), random.randint(0, 0xFFFE)
    prefix = f"2001:db8:{third:x}:{fourth:x}"
    codes = [api_login(f"user-{uuid.uuid4().hex[:8]}", ip=f"{prefix}::{i + 1:x}")[0] for i in range(6)]
    assert codes == [401] * 5 + [429], codes
    assert (
        api_login(f"user-{uuid.uuid4().hex[:8]}", ip=f"2001:db8:{third:x}:{fourth + 1:x}::1")[0] == 401
    )  # next /64
