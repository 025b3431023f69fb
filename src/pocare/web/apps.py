from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "pocare.web"
    label = "web"
    verbose_name = "Web layout and dashboards"
