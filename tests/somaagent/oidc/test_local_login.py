"""SOMA_LOCAL_LOGIN=0: passwords work for superusers only (break-glass), on every password path."""

from __future__ import annotations

import dataclasses

import pytest
from django.test import Client

from tests.somaagent.conftest import client_for, member, new_tenant, new_user
from tests.somaagent.oidc.flow import sign_in

pytestmark = pytest.mark.django_db
PASSWORD = "pw-Secret-123"


@pytest.fixture
def no_passwords(provider, settings):
    settings.SOMA_OIDC = dataclasses.replace(settings.SOMA_OIDC, local_login=False)
    return provider


def test_an_ordinary_password_is_refused_everywhere(no_passwords) -> None:
    user = new_user(password=PASSWORD, is_staff=True)
    member(user, new_tenant())
    chat = Client().post("/login/", {"username": user.username, "password": PASSWORD})
    assert chat.status_code == 200 and "_auth_user_id" not in chat.wsgi_request.session
    says = "Passwords are turned off here except for break-glass administrators. Sign in with Stub IdP."
    assert says in chat.content.decode()
    admin = Client().post(
        "/admin/login/", {"username": user.username, "password": PASSWORD, "next": "/admin/"}
    )
    assert admin.status_code == 200 and "_auth_user_id" not in admin.wsgi_request.session
    assert says in admin.content.decode()
    wrong = Client().post("/login/", {"username": user.username, "password": "not-it"})
    assert says in wrong.content.decode()  # the same answer: it tells nothing about the account
    api = client_for().post(
        "/v1/auth/token", {"username": user.username, "password": PASSWORD}, format="json"
    )
    assert api.status_code == 401


def test_the_break_glass_superuser_still_signs_in_with_a_password(no_passwords) -> None:
    root = new_user(password=PASSWORD, is_staff=True, is_superuser=True)
    client = Client()
    response = client.post(
        "/admin/login/?next=/admin/", {"username": root.username, "password": PASSWORD, "next": "/admin/"}
    )
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    chat = Client().post("/login/", {"username": root.username, "password": PASSWORD})
    assert chat.status_code == 302


def test_password_sessions_of_ordinary_users_stop_working(no_passwords, settings) -> None:
    user = new_user(password=PASSWORD)
    client = Client()
    settings.SOMA_OIDC = dataclasses.replace(settings.SOMA_OIDC, local_login=True)
    assert client.post("/login/", {"username": user.username, "password": PASSWORD}).status_code == 302
    assert client.get("/").status_code == 200
    settings.SOMA_OIDC = dataclasses.replace(settings.SOMA_OIDC, local_login=False)
    assert client.get("/")["Location"].startswith("/login/")


def test_the_login_pages_without_passwords(no_passwords) -> None:
    chat = Client().get("/login/").content.decode()
    assert "Sign in with Stub IdP" in chat and 'name="password"' not in chat
    assert 'href="/admin/login/"' in chat  # the break-glass way in
    admin = Client().get("/admin/login/").content.decode()
    assert "Sign in with Stub IdP" in admin and 'name="password"' in admin
    assert "superusers only" in admin


def test_single_sign_on_still_works(no_passwords) -> None:
    no_passwords.user(groups=["acme-users"])
    client = Client()
    assert sign_in(client).status_code == 302
    assert client.get("/").status_code == 200
