"""Validation of FHIR R5 resources, exported and imported alike (FHIR-BDP, FHIR-DISP).

``fhir.resources`` (pydantic models of R5) checks structure, cardinality and primitive formats; it
does not check code bindings or invariants. So POCare checks itself the *required* bindings of the
elements it uses (:data:`REQUIRED_BINDINGS`), the invariants it relies on (:data:`INVARIANTS`, in
FHIRPath, evaluated by ``fhirpathpy``) and its own profile rules (:data:`PROFILE_RULES`). Every problem
is an :class:`Issue` naming the element by a FHIRPath expression, as an OperationOutcome says it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import pydantic
from fhir.resources import get_fhir_model_class
from fhirpathpy import evaluate

from pocare.patients.fhir import CS_PRODUCT


class Issue(NamedTuple):
    """One problem: where (a FHIRPath expression), what, and the OperationOutcome issue type."""

    expression: str
    message: str
    code: str = "invalid"  # http://hl7.org/fhir/issue-type: invalid, structure, required, value, code-invalid


_REQUEST_STATUS = ("draft", "active", "on-hold", "entered-in-error", "ended", "completed", "revoked", "unknown")

#: Required bindings (R5) of the coded elements POCare writes or reads: FHIRPath of the element → codes.
REQUIRED_BINDINGS: dict[str, tuple[str, ...]] = {
    "Bundle.type": ("document", "message", "transaction", "transaction-response", "batch", "batch-response",
                    "history", "searchset", "collection", "subscription-notification"),
    "Bundle.entry.search.mode": ("match", "include", "outcome"),
    "Bundle.entry.request.method": ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"),
    "ServiceRequest.status": _REQUEST_STATUS,
    "ServiceRequest.intent": ("proposal", "plan", "directive", "order", "original-order", "reflex-order",
                              "filler-order", "instance-order", "option"),
    "ServiceRequest.priority": ("routine", "urgent", "asap", "stat"),
    "BiologicallyDerivedProductDispense.status": ("preparation", "in-progress", "allocated", "issued",
                                                  "unfulfilled", "returned", "entered-in-error", "unknown"),
    "Consent.status": ("draft", "active", "inactive", "not-done", "entered-in-error", "unknown"),
    "Consent.decision": ("deny", "permit"),
    "Procedure.status": ("preparation", "in-progress", "not-done", "on-hold", "stopped", "completed",
                         "entered-in-error", "unknown"),
    "AdverseEvent.status": ("in-progress", "completed", "entered-in-error", "unknown"),
    "AdverseEvent.actuality": ("actual", "potential"),
    "Observation.status": ("registered", "specimen-in-process", "preliminary", "final", "amended", "corrected",
                           "appended", "cancelled", "entered-in-error", "unknown", "cannot-be-obtained"),
    "CarePlan.status": (*_REQUEST_STATUS[:4], "revoked", "completed", "unknown"),
    "CarePlan.intent": ("proposal", "plan", "order", "option", "directive"),
    "Appointment.status": ("proposed", "pending", "booked", "arrived", "fulfilled", "cancelled", "noshow",
                           "entered-in-error", "checked-in", "waitlist"),
    "Appointment.participant.status": ("accepted", "declined", "tentative", "needs-action"),
    "Patient.gender": ("male", "female", "other", "unknown"),
    "Patient.link.type": ("replaced-by", "replaces", "refer", "seealso"),
    "Patient.telecom.system": ("phone", "fax", "email", "pager", "url", "sms", "other"),
    "Patient.name.use": ("usual", "official", "temp", "nickname", "anonymous", "old", "maiden"),
    "OperationOutcome.issue.severity": ("fatal", "error", "warning", "information", "success"),
    "CapabilityStatement.status": ("draft", "active", "retired", "unknown"),
    "CapabilityStatement.kind": ("instance", "capability", "requirements"),
    "CapabilityStatement.rest.mode": ("client", "server"),
    "CapabilityStatement.rest.resource.interaction.code": ("read", "vread", "update", "patch", "delete",
                                                           "history-instance", "history-type", "create",
                                                           "search-type"),
    "CapabilityStatement.rest.resource.searchParam.type": ("number", "date", "string", "token", "reference",
                                                           "composite", "quantity", "uri", "special"),
}

#: Invariants of R5 that fhir.resources does not evaluate: (FHIRPath context, key, rule, human text).
INVARIANTS: tuple[tuple[str, str, str, str], ...] = (
    ("Appointment", "app-2", "start.exists() = end.exists()", "Either start and end are specified, or neither"),
    ("Appointment", "app-3", "(start.exists() and end.exists()) or (status in ('proposed' | 'cancelled' | "
     "'waitlist'))", "Only proposed or cancelled appointments can be missing start/end dates"),
    ("Appointment", "app-4", "start.exists().not() or end.exists().not() or start <= end",
     "The start of an appointment is not after its end"),
    ("Appointment.requestedPeriod", "per-1", "start.exists().not() or end.exists().not() or start <= end",
     "If present, start SHALL have a lower value than end"),
    ("Procedure.occurrencePeriod", "per-1", "start.exists().not() or end.exists().not() or start <= end",
     "If present, start SHALL have a lower value than end"),
    ("BiologicallyDerivedProduct.collection.collectedPeriod", "per-1",
     "start.exists().not() or end.exists().not() or start <= end",
     "If present, start SHALL have a lower value than end"),
    ("Consent.period", "per-1", "start.exists().not() or end.exists().not() or start <= end",
     "If present, start SHALL have a lower value than end"),
    ("CarePlan.period", "per-1", "start.exists().not() or end.exists().not() or start <= end",
     "If present, start SHALL have a lower value than end"),
    ("Range", "rng-2", "low.empty() or high.empty() or (low <= high)",
     "If present, low SHALL have a lower value than high"),
)

#: POCare's own rules on what it exports and imports (docs/fhir.md, "Profile").
PROFILE_RULES: tuple[tuple[str, str, str], ...] = (
    ("BiologicallyDerivedProduct", "productCategory.where(system = 'http://hl7.org/fhir/product-category' "
     "and code = 'cells').exists()", "FHIR-BDP: productCategory is 'cells' of http://hl7.org/fhir/product-category"),
    ("BiologicallyDerivedProduct", "biologicalSourceEvent.value.exists()",
     "FHIR-BDP: biologicalSourceEvent carries the donation identification number (DIN)"),
    ("BiologicallyDerivedProduct", "identifier.exists()", "FHIR-BDP: a product has an identifier"),
    ("BiologicallyDerivedProductDispense",
     "product.reference.exists() and (patient.reference.exists() or patient.identifier.value.exists())",
     "FHIR-DISP: a dispense names the product and the patient"),
    ("ServiceRequest", f"code.concept.coding.where(system = '{CS_PRODUCT}').code.exists() or intent != 'order'",
     "The product ordered is coded in " + CS_PRODUCT),
)


def _fhirpath(resource_type: str, loc: tuple[Any, ...]) -> str:
    out = resource_type
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).endswith("__ext"):
            out += f".{str(part)[:-5]}"
        else:
            out += f".{part}"
    return out


def _values(resource: dict[str, Any], path: str) -> list[Any]:
    try:
        return list(evaluate(resource, path))
    except Exception:  # fhirpathpy raises plain exceptions on data it cannot walk
        return []


def _checks(resource: dict[str, Any], where: str) -> Iterator[Issue]:
    """Bindings, invariants and profile rules of one resource (not its contained or entries)."""
    rtype = resource["resourceType"]
    for path, codes in REQUIRED_BINDINGS.items():
        if path.split(".", 1)[0] != rtype:
            continue
        for value in _values(resource, path):
            if value not in codes:
                yield Issue(where + path[len(rtype):], f"{str(value)[:40]!r} is not a code of the required "
                            f"value set; allowed: {', '.join(codes)}", "code-invalid")
    for context, key, rule, text in INVARIANTS:
        head = context.split(".", 1)[0]
        if head == "Range":
            contexts = [n for p in ("BiologicallyDerivedProduct.storageTempRequirements",
                                    "BiologicallyDerivedProduct.property.valueRange") if p.startswith(rtype)
                        for n in _values(resource, p)]
        elif head == rtype:
            contexts = _values(resource, context) if "." in context else [resource]
        else:
            continue
        for node in contexts:
            if isinstance(node, dict) and _values(node, rule) != [True]:
                yield Issue(where + context[len(head):] if head == rtype else where, f"{key}: {text}", "invariant")
    for rtype_rule, rule, text in PROFILE_RULES:
        if rtype_rule == rtype and _values(resource, rule) != [True]:
            yield Issue(where, text, "business-rule")


def resource_problems(resource: Any, *, where: str = "") -> list[Issue]:
    """Every problem of ``resource`` (a FHIR JSON object): structure per fhir.resources (R5), then the
    required bindings, invariants and profile rules, into contained resources and Bundle entries."""
    if not isinstance(resource, dict):
        return [Issue(where or "Resource", "A resource is a JSON object with a resourceType.", "structure")]
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or not rtype.isalpha() or len(rtype) > 64:
        return [Issue(f"{where}.resourceType" if where else "resourceType", "Give the resourceType.", "required")]
    where = where or rtype
    try:
        model = get_fhir_model_class(rtype)
    except (KeyError, ValueError):
        return [Issue(f"{where}.resourceType", f"{rtype[:40]!r} is not an R5 resource type.", "not-supported")]
    issues: list[Issue] = []
    try:
        model.model_validate(resource)
    except pydantic.ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc = tuple(p for p in error["loc"] if p not in ("", rtype))
            issues.append(Issue(_fhirpath(where, loc), str(error["msg"]).removeprefix("Value error, "), "structure"))
        return issues
    except (ValueError, TypeError, RecursionError) as exc:
        return [Issue(where, f"Not a valid {rtype}: {str(exc)[:200]}", "structure")]
    issues += _checks(resource, where)
    for i, inner in enumerate(resource.get("contained") or []):
        issues += resource_problems(inner, where=f"{where}.contained[{i}]")
    if rtype == "Bundle":
        for i, entry in enumerate(resource.get("entry") or []):
            if isinstance(entry, dict) and "resource" in entry:
                issues += resource_problems(entry["resource"], where=f"{where}.entry[{i}].resource")
    return issues


def assert_valid(resource: dict[str, Any]) -> dict[str, Any]:
    """``resource`` itself when it validates; :class:`InvalidResource` naming every problem otherwise."""
    issues = resource_problems(resource)
    if issues:
        raise InvalidResource(issues)
    return resource


class InvalidResource(ValueError):
    """A resource that does not validate; ``issues`` says where and why."""

    def __init__(self, issues: list[Issue]) -> None:
        super().__init__("; ".join(f"{i.expression}: {i.message}" for i in issues[:5]))
        self.issues = issues


def operation_outcome(issues: list[Issue], *, severity: str = "error") -> dict[str, Any]:
    """An OperationOutcome with one issue per problem, the element named in ``expression``."""
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": _issue_code(i.code), "diagnostics": i.message[:1000],
                       "expression": [i.expression[:500]]} for i in issues[:100]]}


#: OperationOutcome.issue.code (required binding, http://hl7.org/fhir/issue-type) for our kinds.
_ISSUE_CODES = {"invalid", "structure", "required", "value", "invariant", "security", "login", "unknown",
                "expired", "forbidden", "suppressed", "processing", "not-supported", "duplicate",
                "multiple-matches", "not-found", "deleted", "too-long", "code-invalid", "extension",
                "too-costly", "business-rule", "conflict", "limited-filter", "transient", "lock-error",
                "no-store", "exception", "timeout", "incomplete", "throttled", "informational", "success"}


def _issue_code(code: str) -> str:
    return code if code in _ISSUE_CODES else "invalid"
