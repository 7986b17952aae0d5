from django.apps import AppConfig


class WebchatConfig(AppConfig):
    name = "somaagent.project.webchat"
    label = "webchat"
    verbose_name = "Web chat"
