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
        from pocare.core.tasks import JOB_ENQUEUE
        from pocare.jobs.selectors import queue_check
        from pocare.jobs.services import job_enqueue

        HEALTH_CHECKS.register(queue_check)
        JOB_ENQUEUE.register(job_enqueue)  # the trail, a sibling, queues its export through core
