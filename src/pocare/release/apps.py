from django.apps import AppConfig


class ReleaseConfig(AppConfig):
    name = "pocare.release"
    label = "release"
    verbose_name = "Release: QC review, QP certification, inspector bundles"

    def ready(self) -> None:
        from pocare.release import events  # noqa: F401  (registers the event types)
