from django.urls import path

from somaagent.identity.oidc import views

app_name = "oidc"

urlpatterns = [
    path("authenticate/", views.OidcStartView.as_view(), name="authenticate"),
    path("callback/", views.OidcCallbackView.as_view(), name="callback"),
]
