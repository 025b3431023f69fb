from django.apps import AppConfig


class ReleaseConfig(AppConfig):
    name = "pocare.release"
    label = "release"
    verbose_name = "Release: QC review, QP certification, inspector bundles"

    def ready(self) -> None:
        # Imports inside ready(): the app registry must be complete before models are imported.
        from pocare.custody.questions import DISPATCH_HOLDS
        from pocare.release import events  # noqa: F401  (registers the event types)
        from pocare.release.selectors import dispatch_hold

        DISPATCH_HOLDS.register(dispatch_hold)
