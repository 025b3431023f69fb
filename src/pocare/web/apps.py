from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "pocare.web"
    label = "web"
    verbose_name = "Web layout and dashboards"

    def ready(self) -> None:
        from pocare.web import checks  # noqa: F401  (registers the production checks)
