from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "pocare.web"
    label = "web"
    verbose_name = "Web layout and dashboards"

    def ready(self) -> None:
        # Late: the apps' models are loaded only once every app is ready.
        from pocare.web import checks  # noqa: F401  (registers the production checks)
        from pocare.web.queues import register_queues

        register_queues()
