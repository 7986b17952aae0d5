from django.urls import path

from somaagent.project.webchat import views

app_name = "webchat"

urlpatterns = [
    path("", views.chat, name="chat"),
    path("c/<uuid:session_id>/", views.chat, name="session"),
    path("login/", views.ChatLoginView.as_view(), name="login"),
    path("logout/", views.ChatLogoutView.as_view(), name="logout"),
    path("favicon.ico", views.favicon, name="favicon"),
]
