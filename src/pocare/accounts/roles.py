"""Roles and what each may do.

A role is held through a :class:`~pocare.accounts.models.Membership` at one site. Control Site
roles see the whole network; site roles see only the sites they are members of. Permissions
are coarse capabilities checked by views, the API and services alike.
"""

from __future__ import annotations

from enum import StrEnum

from django.db import models


class Role(models.TextChoices):
    CONTROL_QA = "control_qa", "Control Site QA"
    QP = "qp", "Qualified Person"
    PLANNER = "planner", "Network planner"
    INSPECTOR = "inspector", "Inspector"
    SITE_MANAGER = "site_manager", "Site manager"
    OPERATOR = "operator", "Operator"
    QC_ANALYST = "qc_analyst", "QC analyst"
    PHYSICIAN = "physician", "Treating physician"
    NAVIGATOR = "navigator", "Patient navigator"


#: Roles held at the Control Site; they see every site of the network.
NETWORK_ROLES = frozenset({Role.CONTROL_QA, Role.QP, Role.PLANNER, Role.INSPECTOR})
#: Roles held at a POCare site; they see that site only.
SITE_ROLES = frozenset(set(Role) - NETWORK_ROLES)
#: Roles that only read: no service accepts them as actor.
READ_ONLY_ROLES = frozenset({Role.INSPECTOR})


class Perm(StrEnum):
    NETWORK_VIEW = "network.view"
    LEDGER_VIEW = "ledger.view"
    LEDGER_EXPORT = "ledger.export"
    LEDGER_VERIFY = "ledger.verify"
    LEDGER_REVIEW = "ledger.review"
    SIGNATURES_VIEW = "ledger.signatures_view"
    ACCOUNTS_VIEW = "accounts.view"
    ACCOUNTS_MANAGE = "accounts.manage"
    SITES_GOVERN = "network.govern"  # site lifecycle, site authorizations
    UNITS_MANAGE = "network.units"  # register units, record calibration and maintenance
    REPORTS_VIEW = "network.reports"  # annual report on the master file
    MASTERFILE_VIEW = "masterfile.view"
    MASTERFILE_AUTHOR = "masterfile.author"  # draft versions, raise change requests
    MASTERFILE_REVIEW = "masterfile.review"
    MASTERFILE_APPROVE = "masterfile.approve"  # the QP's approval
    CHANGE_RAISE = "masterfile.change_raise"
    TRAINING_VIEW = "training.view"
    TRAINING_RECORD = "training.record"  # record training as trainer; manage curricula
    BATCH_VIEW = "manufacturing.view"  # batch records, device data, QC results, review by exception
    BATCH_EXECUTE = "manufacturing.execute"  # start batches, record and verify steps (the gate decides who)
    DEVICE_PUSH = "manufacturing.device_push"  # automated systems push process data (token clients)
    ALARM_ACK = "manufacturing.alarm_ack"  # acknowledge device alarms (A11-ALARM)
    QC_RECORD = "manufacturing.qc_record"  # enter QC results
    MATERIALS_MANAGE = "manufacturing.materials"  # receive and release material lots at a site
    CUSTODY_VIEW = "custody.view"  # therapy orders, chain of identity, custody, labels, temperature logs
    ORDER_CREATE = "custody.order_create"  # a treating physician or navigator orders a patient's therapy
    ORDER_ACCEPT = "custody.order_accept"  # the site accepts the order: COI assigned
    CUSTODY_RECORD = "custody.record"  # collections, hand-offs, shipments and logger uploads
    DEVIATION_VIEW = "quality.view"
    DEVIATION_RAISE = "quality.raise"  # raise a deviation by hand
    DEVIATION_INVESTIGATE = "quality.investigate"  # classify, investigate, plan and record CAPA actions
    DEVIATION_CLOSE = "quality.close"  # QA: assess impact, close (signed), escalation rules, quality signals
    RELEASE_VIEW = "release.view"  # release checklist, queue, certificates
    EXCEPTIONS_REVIEW = "release.exceptions_review"  # sign the review by exception of a batch
    RELEASE_QC_REVIEW = "release.qc_review"  # stage 1: the site's QC review
    RELEASE_CERTIFY = "release.certify"  # stage 2: the QP certifies or rejects (POC-7: the QP only)
    OOS_REQUEST = "release.oos_request"  # the treating physician asks for / accepts an OOS product
    BUNDLE_EXPORT = "release.bundle_export"  # inspector bundle of a batch
    ANALYTICS_VIEW = "analytics.view"  # comparability, control charts, product quality review
    PLANNING_VIEW = "planning.view"  # site-selection studies and digital-twin runs
    PLANNING_RUN = "planning.run"  # start them (the network planner, Control Site QA)
    JOBS_VIEW = "jobs.view"  # everyone's jobs on the jobs page, and cancel/retry them (Control Site QA)
    PATIENTS_VIEW = "patients.view"  # the pathway under the pseudonym (referrals, stages, bookings, follow-up)
    PATIENTS_IDENTIFY = "patients.identify"  # read a patient's name, birth date, contact (treating hospital only)
    PATIENTS_REFER = "patients.refer"  # refer a patient, assess eligibility, record consent
    PATIENTS_BOOK = "patients.book"  # open clinic slots, book and move a patient's chain of slots
    FOLLOWUP_RECORD = "patients.followup_record"  # record follow-up visits and adverse events
    FOLLOWUP_CORRECT = "patients.followup_correct"  # correct a recorded visit or adverse event, signed (physician)
    OUTCOMES_VIEW = "patients.outcomes"  # the network's outcomes (aggregated, small numbers suppressed)
    SUPPLY_VIEW = "supply.view"  # stock by site, location and lot; its movements; suppliers
    SUPPLIERS_QUALIFY = "supply.suppliers_qualify"  # qualify suppliers, approve them per material (Control Site QA)
    RECALL = "supply.recall"  # open and close the recall of a material lot, signed (Control Site QA)
    PURCHASE_APPROVE = "supply.purchase_approve"  # approve a site's purchase request, signed (site manager, QA)
    COSTS_VIEW = "costs.view"  # the cost model and the cost of each batch, line by line (COST-BATCH)
    COSTS_MANAGE = "costs.manage"  # draft and approve (signed) the cost model (Control Site QA)


#: What people at a site do on the shop floor; Control Site QA oversees it but does not do it.
_SHOP_FLOOR = frozenset({Perm.BATCH_EXECUTE, Perm.DEVICE_PUSH, Perm.ALARM_ACK, Perm.QC_RECORD,
                         Perm.MATERIALS_MANAGE, Perm.ORDER_CREATE, Perm.ORDER_ACCEPT, Perm.CUSTODY_RECORD})
_RECORDS_VIEW = frozenset({Perm.BATCH_VIEW, Perm.CUSTODY_VIEW, Perm.DEVIATION_VIEW, Perm.RELEASE_VIEW,
                           Perm.SUPPLY_VIEW})
#: Only the QP reaches the certify function (POC-7); only the physician requests an OOS product.
#: Only the treating hospital's physician and navigator identify a patient (PAT-PRIVACY).
_PERSONAL = frozenset({Perm.RELEASE_CERTIFY, Perm.OOS_REQUEST, Perm.PATIENTS_IDENTIFY, Perm.PATIENTS_REFER,
                       Perm.PATIENTS_BOOK, Perm.FOLLOWUP_RECORD, Perm.FOLLOWUP_CORRECT})

ROLE_PERMS: dict[Role, frozenset[Perm]] = {
    Role.CONTROL_QA: frozenset(set(Perm) - {Perm.MASTERFILE_APPROVE, Perm.EXCEPTIONS_REVIEW, Perm.RELEASE_QC_REVIEW}
                               - _SHOP_FLOOR - _PERSONAL),
    Role.QP: frozenset(
        {Perm.NETWORK_VIEW, Perm.LEDGER_VIEW, Perm.LEDGER_EXPORT, Perm.LEDGER_VERIFY,
         Perm.LEDGER_REVIEW, Perm.SIGNATURES_VIEW, Perm.REPORTS_VIEW, Perm.MASTERFILE_VIEW,
         Perm.MASTERFILE_APPROVE, Perm.TRAINING_VIEW, *_RECORDS_VIEW, Perm.RELEASE_CERTIFY, Perm.BUNDLE_EXPORT,
         Perm.ANALYTICS_VIEW, Perm.PLANNING_VIEW, Perm.PATIENTS_VIEW, Perm.OUTCOMES_VIEW, Perm.COSTS_VIEW}
    ),
    Role.PLANNER: frozenset({Perm.NETWORK_VIEW, Perm.MASTERFILE_VIEW, Perm.ANALYTICS_VIEW, Perm.PLANNING_VIEW,
                             Perm.PLANNING_RUN, Perm.OUTCOMES_VIEW, Perm.COSTS_VIEW}),
    Role.INSPECTOR: frozenset(
        {Perm.NETWORK_VIEW, Perm.LEDGER_VIEW, Perm.LEDGER_EXPORT, Perm.LEDGER_VERIFY,
         Perm.SIGNATURES_VIEW, Perm.ACCOUNTS_VIEW, Perm.REPORTS_VIEW, Perm.MASTERFILE_VIEW,
         Perm.TRAINING_VIEW, *_RECORDS_VIEW, Perm.BUNDLE_EXPORT, Perm.ANALYTICS_VIEW, Perm.PLANNING_VIEW,
         Perm.COSTS_VIEW}
    ),
    Role.SITE_MANAGER: frozenset(
        {Perm.NETWORK_VIEW, Perm.LEDGER_VIEW, Perm.LEDGER_EXPORT, Perm.LEDGER_REVIEW,
         Perm.SIGNATURES_VIEW, Perm.ACCOUNTS_VIEW, Perm.UNITS_MANAGE, Perm.MASTERFILE_VIEW,
         Perm.CHANGE_RAISE, Perm.TRAINING_VIEW, Perm.TRAINING_RECORD, *_RECORDS_VIEW,
         Perm.BATCH_EXECUTE, Perm.ALARM_ACK, Perm.MATERIALS_MANAGE, Perm.ORDER_ACCEPT, Perm.CUSTODY_RECORD,
         Perm.DEVIATION_RAISE, Perm.DEVIATION_INVESTIGATE, Perm.EXCEPTIONS_REVIEW, Perm.PURCHASE_APPROVE,
         Perm.COSTS_VIEW}  # the cost of their own site's batches
    ),
    Role.OPERATOR: frozenset({Perm.NETWORK_VIEW, Perm.SIGNATURES_VIEW, Perm.MASTERFILE_VIEW, Perm.TRAINING_VIEW,
                              *_RECORDS_VIEW, Perm.BATCH_EXECUTE, Perm.DEVICE_PUSH, Perm.ALARM_ACK,
                              Perm.CUSTODY_RECORD, Perm.DEVIATION_RAISE}),
    Role.QC_ANALYST: frozenset({Perm.NETWORK_VIEW, Perm.SIGNATURES_VIEW, Perm.MASTERFILE_VIEW, Perm.TRAINING_VIEW,
                                *_RECORDS_VIEW, Perm.BATCH_EXECUTE, Perm.QC_RECORD, Perm.MATERIALS_MANAGE,
                                Perm.DEVIATION_RAISE, Perm.EXCEPTIONS_REVIEW, Perm.RELEASE_QC_REVIEW}),
    Role.PHYSICIAN: frozenset({Perm.NETWORK_VIEW, Perm.CUSTODY_VIEW, Perm.ORDER_CREATE, Perm.CUSTODY_RECORD,
                               Perm.RELEASE_VIEW, Perm.OOS_REQUEST, Perm.PATIENTS_VIEW, Perm.PATIENTS_IDENTIFY,
                               Perm.PATIENTS_REFER, Perm.PATIENTS_BOOK, Perm.FOLLOWUP_RECORD, Perm.FOLLOWUP_CORRECT,
                               Perm.OUTCOMES_VIEW}),
    Role.NAVIGATOR: frozenset({Perm.NETWORK_VIEW, Perm.CUSTODY_VIEW, Perm.ORDER_CREATE, Perm.PATIENTS_VIEW,
                               Perm.PATIENTS_IDENTIFY, Perm.PATIENTS_REFER, Perm.PATIENTS_BOOK, Perm.FOLLOWUP_RECORD,
                               Perm.OUTCOMES_VIEW}),
}
