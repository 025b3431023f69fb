"""The layers of the house (docs/architecture.md): who answers the questions that go up the layers,
and how a question behaves when nobody does."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from pocare.core.registry import QUESTIONS, Question

#: Every question a lower app asks and the functions above that answer it. A new answerer (the
#: patients app holding a dispatch for a withdrawn consent, say) is a deliberate change to this table.
ANSWERERS = {
    "ledger.credentials_check": ["pocare.accounts.services.signing_credentials_check"],
    "network.product_changes": ["pocare.masterfile.selectors.product_changes"],
    "masterfile.training_gaps": ["pocare.training.selectors.versions_training_gaps"],
    "quality.deviation_source": ["pocare.manufacturing.selectors.deviation_qc_source"],
    "custody.dispatch_holds": ["pocare.release.selectors.dispatch_hold",
                               "pocare.patients.answers.consent_dispatch_hold",
                               "pocare.supply.answers.recall_dispatch_hold"],
    # Asked for every use the checklist replays: answered by nobody on purpose (a query per use); the
    # recall holds through lot_use_holds and release.certification_holds (docs/supply.md, "Recall").
    "manufacturing.lot_holds": [],
    # Supply (SUP-STOCK): a supplier not approved holds a lot's release; at the step, a supplier no
    # longer qualified or too little stock holds the lot, and the uses decrement stock in the step's
    # transaction.
    "manufacturing.lot_release_holds": ["pocare.supply.answers.lot_release_hold"],
    "manufacturing.lot_use_holds": ["pocare.supply.answers.lot_use_hold"],
    "manufacturing.lot_first_out": ["pocare.supply.answers.lot_first_out"],
    "manufacturing.materials_used": ["pocare.supply.answers.materials_used"],
    # A patient's booked manufacturing slot keeps its unit at batch start; the booking asks planning's
    # travel model.
    "manufacturing.unit_reservations": ["pocare.patients.booking.unit_reservations"],
    # The chains booked at a site are the material supply's reorder points count on (SUP-STOCK).
    "manufacturing.booked_batches": ["pocare.patients.booking.booked_batches"],
    "patients.travel_minutes": ["pocare.planning.selectors.travel_minutes"],
    # A withdrawn consent holds certification and manufacture (PAT-CONSENT); a recalled lot holds the
    # certification of the batches that used it (SUP-RECALL).
    "release.certification_holds": ["pocare.patients.answers.consent_certification_holds",
                                    "pocare.supply.answers.recall_certification_holds"],
    "manufacturing.order_holds": ["pocare.patients.answers.consent_order_hold"],
    # The health of the installation (/health/, /metrics): ops answers for its own parts, the job
    # queue for itself.
    "core.health_checks": ["pocare.ops.health.database_check", "pocare.ops.health.migrations_check",
                           "pocare.ops.health.digests_check", "pocare.ops.health.triggers_check",
                           "pocare.jobs.selectors.queue_check"],
    # Queueing a job, for the queue's sibling (the trail's export): the queue answers.
    "core.job_enqueue": ["pocare.jobs.services.job_enqueue"],
}


def test_each_question_is_answered_by_the_apps_the_architecture_names():
    """Every question declared is listed here with its answerers, and each answerer sits in an app
    above the one asking (the asker's label is the question's prefix)."""
    assert {name: q.answerers for name, q in QUESTIONS.items()} == ANSWERERS
    from django.conf import settings

    order = [a.split(".")[1] for a in settings.INSTALLED_APPS if a.startswith("pocare.")]
    for name, answerers in ANSWERERS.items():
        asker = name.split(".")[0]
        for answerer in answerers:
            assert order.index(answerer.split(".")[1]) > order.index(asker), (name, answerer)


def test_a_required_question_without_an_answer_refuses_instead_of_saying_nothing_holds():
    """A question that guards a release or a dispatch fails closed: asked with no app answering it,
    it raises rather than returning no holds."""
    question: Question[str | None] = Question("test.required_without_answer", "?", required=True)
    try:
        with pytest.raises(ImproperlyConfigured, match="No installed app answers"):
            question.ask(object())
    finally:
        del QUESTIONS["test.required_without_answer"]


def test_answers_come_in_registration_order_and_a_single_question_takes_one_answerer():
    optional: Question[int] = Question("test.optional", "?")
    single: Question[int] = Question("test.single", "?", single=True)
    try:
        assert optional.ask() == []

        def one() -> int:
            return 1

        def two() -> int:
            return 2

        optional.register(one)
        optional.register(two)
        optional.register(one)  # ready() may run twice: registering again changes nothing
        assert optional.ask() == [1, 2]
        single.register(two)
        assert single.ask_one() == 2
        with pytest.raises(ImproperlyConfigured, match="takes one answer"):
            single.register(one)
        with pytest.raises(ImproperlyConfigured, match="declared twice"):
            Question("test.single", "?")
    finally:
        del QUESTIONS["test.optional"], QUESTIONS["test.single"]
