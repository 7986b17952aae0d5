from django.contrib import admin
from django.urls import include, path
from drf_spectacular.renderers import OpenApiJsonRenderer, OpenApiJsonRenderer2, OpenApiYamlRenderer
from drf_spectacular.views import SpectacularAPIView

from somaagent import health
from somaagent.metrics.exposition import metrics_view
from somaagent.project import error_views

urlpatterns = [
    path("admin/usage/", include("conversations.usage_admin")),  # before the admin's own catch-all
    path("admin/", admin.site.urls),
    # JSON at .json (application/json first, so */* and application/json get it), YAML at .yaml.
    path(
        "v1/openapi.json",
        SpectacularAPIView.as_view(renderer_classes=[OpenApiJsonRenderer2, OpenApiJsonRenderer]),
        name="openapi",
    ),
    path(
        "v1/openapi.yaml",
        SpectacularAPIView.as_view(renderer_classes=[OpenApiYamlRenderer]),
        name="openapi-yaml",
    ),
    path("v1/", include("conversations.urls")),
    path("v1/", include("somaagent.api_urls")),
    path("v1/", include("documents.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("s/", include("conversations.share_urls")),  # read-only share links (no login)
    path("oidc/", include("somaagent.identity.oidc.urls")),  # single sign-on (404 unless configured)
    path("", include("somaagent.project.webchat.urls")),
    path("metrics", metrics_view, name="metrics"),
]

handler404 = error_views.not_found
handler500 = error_views.server_error
