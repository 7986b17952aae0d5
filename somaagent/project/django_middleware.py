"""Django's own middleware, run synchronously together: one thread hop per request, not fourteen.

Under ASGI, Django runs each ``MiddlewareMixin`` middleware's ``process_request``
and ``process_response`` through ``sync_to_async``: with the seven below, a
request crossed into a thread and back up to fourteen times before and after
the view, each crossing a handoff between the event loop and a thread that,
under a burst, waits for the GIL behind every other request. Declared
sync-only, Django runs the seven in one crossing (``BaseHandler.load_middleware``
adapts once, where the chain changes mode) before an async view (the OpenAI door). A sync
view's whole request, these included, runs on one thread in one hop
(``somaagent.project.asgi_handler``). Behaviour is Django's: these classes change
nothing but the declaration.
"""

from __future__ import annotations

from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.middleware import clickjacking, common, csrf, security


class SecurityMiddleware(security.SecurityMiddleware):
    async_capable = False


class SessionMiddleware(sessions.SessionMiddleware):
    async_capable = False


class CommonMiddleware(common.CommonMiddleware):
    async_capable = False


class CsrfViewMiddleware(csrf.CsrfViewMiddleware):
    async_capable = False


class AuthenticationMiddleware(auth.AuthenticationMiddleware):
    async_capable = False


class MessageMiddleware(messages.MessageMiddleware):
    async_capable = False


class XFrameOptionsMiddleware(clickjacking.XFrameOptionsMiddleware):
    async_capable = False
