"""The FHIR endpoint under ``/fhir/`` (docs/fhir.md): parse, call export/importer, answer FHIR JSON.

Every answer is ``application/fhir+json``; every refusal is an OperationOutcome naming the element
and the problem (400 for what cannot be read, 401/403 for who, 404 for what does not exist for the
client, 413 for a body over the limit, 422 for a resource that reads but breaks a rule). Clients
authenticate with the project's bearer tokens (or a browser session). GET never writes (house rule):
a Patient's identifying data are disclosed only on POST (``Patient/_search``, ``$everything``), where
the disclosure is recorded before the answer leaves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError
from django.http import QueryDict
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, permissions, status
from rest_framework.parsers import FormParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from pocare.accounts.models import ApiToken, User
from pocare.accounts.roles import Perm
from pocare.core import bounds
from pocare.core.parsers import BoundedJSONParser
from pocare.patients.fhir import FHIR_JSON, SID_PSEUDONYM
from pocare.patients.fhir import export as fhir
from pocare.patients.fhir.capability import capability_statement
from pocare.patients.fhir.importer import service_request_import
from pocare.patients.fhir.services import identity_disclose
from pocare.patients.fhir.validation import InvalidResource, Issue, operation_outcome

#: Search parameters the endpoint understands; anything else is refused, naming these.
SEARCH_PARAMS = ("identifier", "patient", "_count")
MAX_COUNT = 200
_STRUCTURAL = {"structure", "not-supported"}


class FhirRenderer(JSONRenderer):
    media_type = FHIR_JSON
    format = "fhir"
    charset = "utf-8"


class FhirParser(BoundedJSONParser):
    media_type = FHIR_JSON


#: The OpenAPI description (drf-spectacular; tools/api_fuzz.py fuzzes /fhir/ from it). FHIR's own
#: description of the endpoint is the CapabilityStatement.
_SEARCH_DOC = [OpenApiParameter(name, str, required=False) for name in SEARCH_PARAMS]
_FHIR = {200: OpenApiTypes.OBJECT, 201: OpenApiTypes.OBJECT}


_Handler = TypeVar("_Handler", bound=Callable[..., Response])


def _doc(operation_id: str, *, search: bool = False, body: bool = False) -> Callable[[_Handler], _Handler]:
    decorator: Callable[[_Handler], _Handler] = extend_schema(
        operation_id=operation_id, tags=["fhir"], parameters=_SEARCH_DOC if search else None,
        request=OpenApiTypes.OBJECT if body else None, responses=_FHIR)
    return decorator


class _Refusal(Exception):
    def __init__(self, http_status: int, issues: list[Issue]) -> None:
        super().__init__(issues[0].message if issues else "")
        self.http_status, self.issues = http_status, issues


def _outcome(http_status: int, expression: str, message: str, code: str) -> Response:
    return Response(operation_outcome([Issue(expression, message, code)]), status=http_status)


class FhirView(APIView):
    """What every FHIR view shares: FHIR JSON in and out, errors as OperationOutcome, the read
    permission of products and pseudonyms (CUSTODY_VIEW) at the door; each resource is scoped by
    :mod:`pocare.patients.fhir.export`."""

    renderer_classes = [FhirRenderer, JSONRenderer]
    parser_classes = [FhirParser, BoundedJSONParser, FormParser]
    required_perm: ClassVar[Any] = Perm.CUSTODY_VIEW

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, _Refusal):
            return Response(operation_outcome(exc.issues), status=exc.http_status)
        if isinstance(exc, InvalidResource):
            structural = any(i.code in _STRUCTURAL for i in exc.issues)
            return Response(operation_outcome(exc.issues), status=400 if structural else 422)
        if isinstance(exc, exceptions.ParseError):
            detail = exc.detail
            if isinstance(detail, dict):
                issues = [Issue(str(k), " ".join(map(str, v if isinstance(v, list) else [v])), "structure")
                          for k, v in detail.items()]
            else:
                issues = [Issue("Resource", str(detail), "structure")]
            return Response(operation_outcome(issues), status=400)
        if isinstance(exc, ValidationError):
            messages = exc.message_dict if hasattr(exc, "error_dict") else {"Resource": exc.messages}
            return Response(operation_outcome([Issue(k, " ".join(v), "business-rule") for k, v in messages.items()]),
                            status=422)
        if isinstance(exc, DjangoPermissionDenied):
            exc = exceptions.PermissionDenied(str(exc) or None)
        if isinstance(exc, exceptions.APIException):
            code = {401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported", 413: "too-long",
                    415: "not-supported", 429: "throttled"}.get(exc.status_code, "processing")
            response = _outcome(exc.status_code, "Resource", str(exc.detail), code)
            if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
                response.status_code = status.HTTP_401_UNAUTHORIZED
                response["WWW-Authenticate"] = 'Bearer realm="fhir"'
            return response
        return super().handle_exception(exc)


def _type(resource_type: str) -> str:
    if resource_type not in fhir.RESOURCE_TYPES:
        raise _Refusal(404, [Issue(resource_type[:64], f"This server serves {', '.join(fhir.RESOURCE_TYPES)}.",
                                   "not-supported")])
    return resource_type


def _params(data: QueryDict | dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    keys = list(data.keys())
    for key in keys:
        values = data.getlist(key) if isinstance(data, QueryDict) else [data[key]]
        if key not in SEARCH_PARAMS:
            raise _Refusal(400, [Issue(str(key)[:40], f"Unknown search parameter; this server understands "
                                                       f"{', '.join(SEARCH_PARAMS)}.", "not-supported")])
        if len(values) != 1:
            raise _Refusal(400, [Issue(key, "Give this parameter once.", "invalid")])
        value = str(values[0])
        problem = bounds.text_problem(value)
        if problem or len(value) > 300:
            raise _Refusal(400, [Issue(key, problem or "At most 300 characters.", "value")])
        out[key] = value
    return out


def _search(request: Request, resource_type: str, params: dict[str, str], *, identify: bool) -> Response:
    count = 50
    if "_count" in params:
        raw = params["_count"]
        if not raw.isdigit() or len(raw) > 4 or not 1 <= int(raw) <= MAX_COUNT:
            raise _Refusal(400, [Issue("_count", f"A whole number from 1 to {MAX_COUNT}.", "value")])
        count = int(raw)
    identifier = None
    if "identifier" in params:
        system, bar, value = params["identifier"].rpartition("|")
        if not value:
            raise _Refusal(400, [Issue("identifier", "Give system|value or value.", "value")])
        identifier = (system or None) if bar else None, value
    patient = None
    if "patient" in params:
        patient = params["patient"].removeprefix("Patient/")
        if "|" in patient:  # a token-style patient reference by pseudonym
            system, _, patient = patient.rpartition("|")
            if system and system != SID_PSEUDONYM:
                raise _Refusal(400, [Issue("patient", f"Name the patient by id or by {SID_PSEUDONYM}|<pseudonym>.",
                                           "value")])
    found = fhir.search(request.user, resource_type, identifier=identifier, patient=patient, count=count,
                        identify=identify)
    _disclose(request, found, f"FHIR search {resource_type}")
    return Response(_bundle(request, found.resources, partial=found.partial))


def _disclose(request: Request, found: fhir.Found, what: str) -> None:
    if found.disclosed:
        token = request.auth
        by = f" by token {token.prefix}… ({token.name})" if isinstance(token, ApiToken) else " in a browser session"
        identity_disclose(actor=_user(request), patients=found.disclosed, channel="fhir", reason=f"{what}{by}")


def _user(request: Request) -> User:
    """The caller, signed in (the permission class has let no one else through)."""
    assert isinstance(request.user, User)
    return request.user


def _full_url(request: Request, resource: dict[str, Any]) -> str:
    return request.build_absolute_uri(f"/fhir/{resource['resourceType']}/{resource['id']}")


def _bundle(request: Request, resources: list[dict[str, Any]], *, partial: bool = False) -> dict[str, Any]:
    """A searchset. ``total`` only when it is the whole count: a search stopped at ``_count`` says so
    in an OperationOutcome entry (``search.mode`` ``outcome``) instead of stating a total it does not know."""
    bundle: dict[str, Any] = {
        "resourceType": "Bundle", "type": "searchset",
        "link": [{"relation": "self", "url": request.build_absolute_uri()[:2000]}],
        "entry": [{"fullUrl": _full_url(request, r), "resource": r, "search": {"mode": "match"}} for r in resources]}
    if partial:
        bundle["entry"].append({"resource": operation_outcome([Issue(
            "_count", f"More resources may match than the {len(resources)} returned; this server gives one page: "
                      "search by identifier or patient, or raise _count (at most "
                      f"{MAX_COUNT}).", "too-costly")], severity="information"), "search": {"mode": "outcome"}})
    else:
        bundle["total"] = len(resources)
    return bundle


class Metadata(FhirView):
    """``GET /fhir/metadata``: the CapabilityStatement, open to anyone (as FHIR servers publish it)."""

    required_perm = "public"
    permission_classes = [permissions.AllowAny]
    authentication_classes = []
    http_method_names = ["get"]

    @_doc("fhir_metadata")
    def get(self, request: Request) -> Response:
        return Response(capability_statement())


class TypeEndpoint(FhirView):
    """``GET /fhir/<type>?identifier=&patient=``: search; ``POST /fhir/ServiceRequest``: import a referral."""

    write_perm = Perm.PATIENTS_REFER
    http_method_names = ["get", "post"]

    @_doc("fhir_search", search=True)
    def get(self, request: Request, resource_type: str) -> Response:
        return _search(request, _type(resource_type), _params(request.query_params), identify=False)

    @_doc("fhir_create", body=True)
    def post(self, request: Request, resource_type: str) -> Response:
        if _type(resource_type) != "ServiceRequest":
            raise _Refusal(405, [Issue(resource_type, "Only ServiceRequest may be created here.", "not-supported")])
        return _import(request, request.data, bundle=False)


class SearchByPost(FhirView):
    """``POST /fhir/<type>/_search``: the search as FHIR allows it by POST. Only this (and ``$everything``
    by POST) discloses a Patient's identifying data, to PATIENTS_IDENTIFY at the treating hospital."""

    recorded_read = True
    http_method_names = ["post"]

    @_doc("fhir_search_by_post", search=True)
    def post(self, request: Request, resource_type: str) -> Response:
        data = request.data if isinstance(request.data, QueryDict) else QueryDict()
        merged = request.query_params.copy()
        for key in data:
            merged.setlist(key, [*merged.getlist(key), *data.getlist(key)])
        return _search(request, _type(resource_type), _params(merged), identify=resource_type == "Patient")


class Read(FhirView):
    """``GET /fhir/<type>/<id>``: one resource, or 404 when it does not exist for the client."""

    http_method_names = ["get"]

    @_doc("fhir_read")
    def get(self, request: Request, resource_type: str, resource_id: str) -> Response:
        found = fhir.read(request.user, _type(resource_type), resource_id)
        if not found.resources:
            # The id asked for is not echoed: a pseudonym typed at another site is not shown back.
            raise _Refusal(404, [Issue(f"{resource_type}.id", "No such resource.", "not-found")])
        return Response(found.resources[0])


class Everything(FhirView):
    """``/fhir/Patient/<id>/$everything``: the patient Bundle. By GET pseudonymous; by POST with the
    identifying data when the client may see them (the disclosure recorded)."""

    recorded_read = True
    http_method_names = ["get", "post"]

    def _answer(self, request: Request, resource_id: str, *, identify: bool) -> Response:
        patient = fhir.patients_visible(request.user).filter(pseudonym=resource_id).first()
        if patient is None:
            raise _Refusal(404, [Issue("Patient.id", "No such patient.", "not-found")])
        found = fhir.everything(request.user, patient, identify=identify)
        _disclose(request, found, "FHIR Patient/$everything")
        return Response(_bundle(request, found.resources, partial=found.partial))

    @_doc("fhir_everything")
    def get(self, request: Request, resource_id: str) -> Response:
        return self._answer(request, resource_id, identify=False)

    @_doc("fhir_everything_by_post")
    def post(self, request: Request, resource_id: str) -> Response:
        return self._answer(request, resource_id, identify=True)


class Transaction(FhirView):
    """``POST /fhir/``: a transaction Bundle with one ServiceRequest and its Patient."""

    write_perm = Perm.PATIENTS_REFER
    required_perm = Perm.PATIENTS_REFER
    http_method_names = ["post"]

    @_doc("fhir_transaction", body=True)
    def post(self, request: Request) -> Response:
        return _import(request, request.data, bundle=True)


def _import(request: Request, payload: Any, *, bundle: bool) -> Response:
    if isinstance(payload, QueryDict):
        raise _Refusal(415, [Issue("Resource", f"Send the resource as {FHIR_JSON}.", "not-supported")])
    if bundle and not (isinstance(payload, dict) and payload.get("resourceType") == "Bundle"):
        raise _Refusal(400, [Issue("resourceType", "Send a transaction Bundle here, or POST the ServiceRequest "
                                                   "to /fhir/ServiceRequest.", "not-supported")])
    referral, created = service_request_import(actor=_user(request), payload=payload)
    resource = fhir.service_request(fhir.referrals_load(type(referral).objects.filter(pk=referral.pk))[0])
    location = f"ServiceRequest/{resource['id']}"
    http_status = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    if bundle:
        body = {"resourceType": "Bundle", "type": "transaction-response",
                "entry": [{"fullUrl": _full_url(request, resource), "resource": resource,
                           "response": {"status": "201 Created" if created else "200 OK", "location": location}}]}
        return Response(body, status=status.HTTP_200_OK)
    response = Response(resource, status=http_status)
    response["Location"] = request.build_absolute_uri(f"/fhir/{location}")
    return response


__all__ = ["Everything", "Metadata", "Read", "SearchByPost", "Transaction", "TypeEndpoint"]
