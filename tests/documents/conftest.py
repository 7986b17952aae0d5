"""The web chat's browser fixtures, for the citations test (tests/documents/test_webchat.py)."""

from tests.webchat.conftest import browser, chat_page, chat_user  # noqa: F401
