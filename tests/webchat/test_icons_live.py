"""The icons through the live ASGI server (static files included), as a browser asks for them.

Not in test_views.py: that module is marked ``django_db``, and pytest-django runs
those tests before the transactional ones, which must not find a live system
already running (its worker would pick up their turns).
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_the_live_server_serves_both_icons(live_system) -> None:
    with live_system.client() as c:
        ico = c.get("/favicon.ico")
        svg = c.get("/static/webchat/favicon.svg")
    assert ico.status_code == 200 and ico.headers["content-type"] == "image/x-icon"
    assert ico.content[:4] == b"\x00\x00\x01\x00"
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
