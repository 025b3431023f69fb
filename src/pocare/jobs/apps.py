from django.apps import AppConfig


class JobsConfig(AppConfig):
    """The job queue and the scheduler (docs/jobs.md): work that must not run inside a request or
    die with a server — planning and twin runs, the nightly and daily checks, the trail's anchoring.
    A job names its task by dotted path, so this low app imports no domain app."""

    name = "pocare.jobs"
    label = "jobs"
    verbose_name = "Jobs (queue and scheduler)"

    def ready(self) -> None:
        # Inside ready(): the check reads the queue's models, which need the app registry.
        from pocare.core.monitoring import HEALTH_CHECKS
        from pocare.jobs.selectors import queue_check

        HEALTH_CHECKS.register(queue_check)
