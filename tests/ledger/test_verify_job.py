"""Verifying the trail from the web runs as a job (issue 15: a network's trail takes longer than a
request may): the button queues it, the job's page shows the report, the verify page the last result."""

from __future__ import annotations

import pytest
from django.urls import reverse

from pocare.jobs.models import Job
from pocare.ledger.events import LedgerEvent
from pocare.ledger.models import Event
from pocare.network.models import Site
from tests.conftest import drop_triggers
from tests.jobs.run import job_of, run_queued_jobs
from tests.ledger.helpers import raw, write_events

pytestmark = pytest.mark.django_db


def test_the_verify_button_queues_a_job_whose_page_shows_the_report(login, people):
    """P11-10e: an inspector verifies the network's chains; the job records the run and its page shows
    each chain intact; the verify page then shows the inspector's last result."""
    client = login("inspector")
    assert "Press <strong>Verify now</strong>" in client.get(reverse("trail:verify")).content.decode()
    assert not Job.objects.exists()  # a GET queues nothing
    job = job_of(client.post(reverse("trail:verify")))
    assert job.task == "pocare.trail.tasks.trail_verify_work" and job.created_by == people["inspector"]
    assert run_queued_jobs() == 1
    page = client.get(reverse("jobs:job", kwargs={"pk": job.pk})).content.decode()
    assert "Intact." in page and "BROKEN" not in page
    assert 'href="/audit/?chain=MAD"' in page and 'href="/audit/?chain=NETWORK"' in page
    recorded = Event.objects.filter(event_type=LedgerEvent.VERIFIED).get()
    assert recorded.actor_username == "inspector" and recorded.label in page
    again = client.get(reverse("trail:verify")).content.decode()
    assert "Your last verification" in again and "intact" in again and recorded.label in again


def test_an_edited_event_shows_as_broken_on_the_jobs_page(login, people):
    """P11-10e: an event of Madrid's edited behind the ledger's back shows as BROKEN at that event on
    the job's page of Control Site QA's verification, and the verify page says problems were found."""
    events = write_events(people["operator.mad"], Site.objects.get(code="MAD"), 3)
    drop_triggers()
    raw("UPDATE ledger_event SET reason = %s WHERE id = %s", ["forged", events[1].pk])
    client = login("qa")
    job = job_of(client.post(reverse("trail:verify")))
    run_queued_jobs()
    job.refresh_from_db()
    broken = [c for c in job.result["chains"] if not c["ok"]]
    assert [c["broken_event"] for c in broken] == [events[1].label]
    assert job.result["ok"] is False
    page = client.get(reverse("jobs:job", kwargs={"pk": job.pk})).content.decode()
    assert "Problems found." in page and "BROKEN" in page and events[1].label in page
    assert "problems found" in client.get(reverse("trail:verify")).content.decode()


def test_another_persons_verification_job_is_not_theirs_to_read(login, people):
    """A verification job's report is shown to whoever ran it (and Control Site QA), not to a site's
    person; a site manager (no verify permission) cannot queue one."""
    assert login("manager.mad").post(reverse("trail:verify")).status_code == 403
    job = job_of(login("inspector").post(reverse("trail:verify")))
    run_queued_jobs()
    assert login("manager.lis").get(reverse("jobs:job", kwargs={"pk": job.pk})).status_code == 404
