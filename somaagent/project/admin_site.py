"""The admin site: SomaAgent's name, its models grouped by what staff do, a dashboard of the
operational gauges on the front page (somaagent/project/admin_dashboard.py), and its login throttled
like every other login path (somaagent/identity/login_throttle.py). Installed through
``SomaAdminConfig`` (somaagent/project/admin_app.py)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _

from somaagent.errors import RateLimited, RateLimitUnavailable
from somaagent.identity.login_throttle import login_attempt, refused_form, with_retry_after
from somaagent.identity.oidc.forms import AdminLoginForm
from somaagent.identity.oidc.views import provider_logout_url, sign_in_choices
from somaagent.project.admin_dashboard import dashboard_figures, grouped_app_list


class SomaAdminSite(admin.AdminSite):
    site_header = "SomaAgent administration"
    site_title = "SomaAgent admin"
    index_title = "Dashboard"
    index_template = "admin/soma_index.html"
    login_template = "admin/soma_login.html"  # Django's, with the single sign-on button
    login_form = AdminLoginForm

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        app_list = super().get_app_list(request, app_label)
        return app_list if app_label is not None else grouped_app_list(app_list)

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        context = {"dashboard": dashboard_figures(), **(extra_context or {})}
        return super().index(request, context)

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        next_url = request.GET.get("next") or reverse("admin:index", current_app=self.name)
        extra_context = {**sign_in_choices(request, next_url=next_url), **(extra_context or {})}
        if request.method == "POST":
            try:
                login_attempt(request=request, username=request.POST.get("username"))
            except (RateLimited, RateLimitUnavailable) as exc:
                return self._refused(request, exc, extra_context)
        return super().login(request, extra_context)

    # A redirect to the provider, or Django's page.
    def logout(  # type: ignore[override]
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Ends the local session; a session from single sign-on then ends at the provider too."""
        at_provider = provider_logout_url(request) if request.method == "POST" else None
        response = super().logout(request, extra_context)
        return HttpResponseRedirect(at_provider) if at_provider else response

    def _refused(
        self, request: HttpRequest, exc: RateLimited | RateLimitUnavailable, extra: dict[str, Any] | None
    ) -> HttpResponse:
        request.current_app = self.name
        context = {
            **self.each_context(request),
            "title": _("Log in"),
            "subtitle": None,
            "app_path": request.get_full_path(),
            "username": "",
            "next": request.POST.get("next", ""),
            "form": refused_form(AdminLoginForm, request, exc),
            **(extra or {}),
        }
        response = TemplateResponse(request, self.login_template or "admin/login.html", context)
        return with_retry_after(response, exc)
