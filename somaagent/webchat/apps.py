from django.apps import AppConfig


class WebchatConfig(AppConfig):
    name = "somaagent.webchat"
    label = "webchat"
    verbose_name = "Web chat"
