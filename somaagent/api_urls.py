from django.urls import path

from somaagent import api

urlpatterns = [
    path("auth/token", api.TokenObtainView.as_view(), name="auth-token"),
    path("auth/token/refresh", api.TokenRefreshView.as_view(), name="auth-token-refresh"),
    path("me", api.MeView.as_view(), name="me"),
    path("keys", api.KeyListView.as_view(), name="key-list"),
    path("keys/<str:prefix>", api.KeyDetailView.as_view(), name="key-detail"),
    path("budget", api.BudgetView.as_view(), name="budget"),
]
