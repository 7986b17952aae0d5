from django.urls import path

from conversations.share_page import shared_chat

urlpatterns = [path("<str:token>/", shared_chat, name="shared-chat")]
