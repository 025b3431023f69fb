"""The custody pages: therapy orders; an order's chain of identity (COI, collections with DINs, the
hand-off timeline, shipments with their temperatures); forms to act on it; labels as SVG and PDF.
Views parse and call services."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from pocare.accounts.decorators import request_actor, requires
from pocare.accounts.roles import Perm
from pocare.core.forms import apply_validation_error
from pocare.core.listing import render_list
from pocare.custody import label_layout, labels, selectors, services
from pocare.custody.filters import ORDER_COLUMNS, OrderFilter
from pocare.custody.forms import AcceptForm, CollectionForm, HandoffForm, OrderForm, ShipmentForm, UploadForm
from pocare.custody.isbt import coi_printed
from pocare.custody.models import Collection, HandoffKind, OrderStatus, TherapyOrder
from pocare.network.models import Site
from pocare.network.selectors import products
from pocare.trail.selectors import events_visible


def _order(request: HttpRequest, pk: int, perm: Perm = Perm.CUSTODY_VIEW) -> TherapyOrder:
    """The order, if the person holds ``perm`` at one of its sites (404 otherwise)."""
    return get_object_or_404(selectors.orders_visible(request.user, perm), pk=pk)


@requires(Perm.CUSTODY_VIEW)
@require_GET
def orders(request: HttpRequest) -> HttpResponseBase:
    """Therapy orders at the person's sites (the whole network for the Control Site)."""
    return render_list(request, "custody/orders.html", filterset_class=OrderFilter,
                       queryset=selectors.orders_visible(request.user), columns=ORDER_COLUMNS, name="orders",
                       context={"may_create": selectors.may_create_order(request.user)})


def _order_form(request: HttpRequest, data: Any = None) -> OrderForm:
    treating = selectors.treating_sites_for(request.user)
    return OrderForm(data, treating=[(s.code, f"{s.code} — {s.name}") for s in treating],
                     sites=[(s.code, f"{s.code} — {s.name}") for s in selectors.manufacturing_sites()],
                     products=[(p.code, str(p)) for p in products()])


@requires(Perm.ORDER_CREATE)
@require_http_methods(["GET", "POST"])
def order_new(request: HttpRequest) -> HttpResponse:
    """A treating physician or navigator orders a patient's therapy."""
    form = _order_form(request, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            order = services.therapy_order_create(
                actor=request_actor(request), site=Site.objects.get(code=data["site"]),
                treating_site=Site.objects.get(code=data["treating_site"]),
                product=products().get(code=data["product"]), recipient_id=data["recipient_id"],
                recipient_weight_kg=data["recipient_weight_kg"], indication=data["indication"],
                recipient_birth_year=data["recipient_birth_year"], reason=data["reason"])
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(request, f"Order #{order.pk} for {order.recipient_id} sent to {order.site.name}.")
            return redirect("custody:order", pk=order.pk)
    return render(request, "custody/order_new.html", {"form": form},
                  status=400 if request.method == "POST" else 200)


#: The order page holds several forms with a reason: each form's fields get ids of their own.
_IDS = {name: f"id_{name}_%s" for name in ("accept", "collection", "handoff", "shipment")}


def _upload_ids(shipment_pk: int) -> str:
    return f"id_upload{shipment_pk}_%s"


def _order_page(request: HttpRequest, order: TherapyOrder, *, status: int = 200, **bound: Any) -> HttpResponse:
    user = request.user
    collections = list(order.collections.select_related("collection_site", "recorded_by").order_by("pk"))
    handoffs = list(selectors.handoffs_of(order))
    options: list[Collection | None] = [*collections] or [None]
    next_kinds = [k for c in options for k in services.handoffs_next(order, c)]
    next_kinds = [k for k in HandoffKind if k in next_kinds]
    choices = [(c.pk, c.din_printed) for c in collections]
    # Each shipment has its upload form, with ids of its own; the one just posted keeps its errors.
    shipments = [(s, mark_safe(s.chart), bound["upload_form"] if s.shipment.pk == bound.get("upload_pk")  # noqa: S308
                  else UploadForm(auto_id=_upload_ids(s.shipment.pk))) for s in selectors.shipments_of(order)]
    containers = []
    if selectors.may_record(user, order):
        for container in labels.containers_of(order):
            containers.append((container, labels.label_content(order, container)))
    trail = events_visible(user)
    # Events that state the order's COI (its collections, hand-offs, batch…), found by key, not by text.
    trail = trail.filter(subjects__key=order.coi) if order.coi else trail.filter(
        object_type="custody.TherapyOrder", object_id=str(order.pk))
    events = trail.order_by("-id")[:25]
    context = {
        "order": order, "coi_printed": coi_printed(order.coi) if order.coi else "", "collections": collections,
        "handoffs": handoffs, "next_kinds": [(k, HandoffKind(k).label) for k in next_kinds],
        "shipments": shipments, "containers": containers, "events": events,
        "label_sizes": list(label_layout.LABEL_SIZES.values()),
        "may_accept": selectors.may_accept(user, order) and order.status == OrderStatus.REQUESTED,
        "may_record": selectors.may_record(user, order) and order.status not in (
            OrderStatus.REQUESTED, OrderStatus.CANCELLED),
        "may_collect": selectors.may_record_at(user, order.treating_site) and order.status == OrderStatus.ACCEPTED,
        "accept_form": bound.get("accept_form") or AcceptForm(auto_id=_IDS["accept"]),
        "collection_form": bound.get("collection_form") or CollectionForm(auto_id=_IDS["collection"]),
        "handoff_form": bound.get("handoff_form") or HandoffForm(collections=choices, kinds=next_kinds,
                                                                 auto_id=_IDS["handoff"]),
        "shipment_form": bound.get("shipment_form") or ShipmentForm(auto_id=_IDS["shipment"]),
        "blocked": bound.get("blocked"),
        "treating_tz": order.treating_site.time_zone,
    }
    return render(request, "custody/order.html", context, status=status)


@requires(Perm.CUSTODY_VIEW)
@require_GET
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _order_page(request, _order(request, pk))


@requires(Perm.CUSTODY_VIEW, write=Perm.ORDER_ACCEPT)
@require_POST
def order_accept(request: HttpRequest, pk: int) -> HttpResponse:
    """The manufacturing site accepts the order: the COI is assigned."""
    order = _order(request, pk)
    form = AcceptForm(request.POST, auto_id=_IDS["accept"])
    if form.is_valid():
        try:
            services.therapy_order_accept(actor=request_actor(request), order=order, reason=form.cleaned_data["reason"])
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(request, f"Order accepted: COI {coi_printed(order.coi or '')}.")
            return redirect("custody:order", pk=order.pk)
    return _order_page(request, order, status=400, accept_form=form)


def _local(value: dt.datetime, site: Site) -> dt.datetime:
    """A datetime-local field's value is the wall-clock time at ``site``."""
    return value.replace(tzinfo=None).replace(tzinfo=site.tz)


@requires(Perm.CUSTODY_VIEW, write=Perm.CUSTODY_RECORD)
@require_POST
def collection_new(request: HttpRequest, pk: int) -> HttpResponse:
    """Record a collection of starting material: the DIN is assigned."""
    order = _order(request, pk, Perm.CUSTODY_RECORD)
    form = CollectionForm(request.POST, auto_id=_IDS["collection"])
    if form.is_valid():
        data = form.cleaned_data
        site = order.treating_site
        try:
            collection = services.collection_record(
                actor=request_actor(request), order=order,
                collection_started_at=_local(data["collection_started_at"], site),
                collection_ended_at=_local(data["collection_ended_at"], site), volume_ml=data["volume_ml"],
                donor_tests=data["donor_tests"], autologous=data["autologous"], reason=data["reason"])
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(request, f"Collection recorded: DIN {collection.din_printed}.")
            return redirect(reverse("custody:order", args=[order.pk]) + "#collections")
    return _order_page(request, order, status=400, collection_form=form)


@requires(Perm.CUSTODY_VIEW, write=Perm.CUSTODY_RECORD)
@require_POST
def handoff_new(request: HttpRequest, pk: int) -> HttpResponse:
    """Record a hand-off from a scan. A mismatch is kept as a blocked attempt with its deviation."""
    order = _order(request, pk, Perm.CUSTODY_RECORD)
    choices = [(c.pk, c.din_printed) for c in order.collections.order_by("pk")]
    form = HandoffForm(request.POST, collections=choices, auto_id=_IDS["handoff"])
    if form.is_valid():
        data = form.cleaned_data
        kind = data["kind"]
        collection = order.collections.filter(pk=data["collection"]).first() if data["collection"] else None
        site = services.handoff_site(order=order, kind=kind, collection=collection)
        try:
            handoff = services.handoff_record(
                actor=request_actor(request), order=order, kind=kind, presented_identifier=data["presented_identifier"],
                site=site, location=data["location"], notes=data["notes"], collection=collection)
        except services.HandoffBlocked as exc:
            apply_validation_error(form, exc)
            messages.error(request, f"Hand-off blocked: identifier mismatch. Deviation {exc.deviation.reference} "
                                    "is open; the attempt is in the timeline.")
            return _order_page(request, order, status=409, handoff_form=form, blocked=exc.handoff)
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(request, f"{handoff.get_kind_display()} recorded: identifier verified.")
            return redirect(reverse("custody:order", args=[order.pk]) + "#timeline")
    return _order_page(request, order, status=400, handoff_form=form)


@requires(Perm.CUSTODY_VIEW, write=Perm.CUSTODY_RECORD)
@require_POST
def shipment_new(request: HttpRequest, pk: int) -> HttpResponse:
    """Dispatch a shipment with its data logger (limits copied from the master file)."""
    order = _order(request, pk, Perm.CUSTODY_RECORD)
    form = ShipmentForm(request.POST, auto_id=_IDS["shipment"])
    if form.is_valid():
        try:
            services.shipment_dispatch(actor=request_actor(request), order=order, **form.cleaned_data)
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(request, "Shipment dispatched.")
            return redirect(reverse("custody:order", args=[order.pk]) + "#shipments")
    return _order_page(request, order, status=400, shipment_form=form)


@requires(Perm.CUSTODY_VIEW, write=Perm.CUSTODY_RECORD)
@require_POST
def upload_new(request: HttpRequest, pk: int) -> HttpResponse:
    """Upload a logger's CSV for a shipment; malformed rows reject the whole file."""
    shipment = get_object_or_404(selectors.shipments_visible(request.user, Perm.CUSTODY_RECORD), pk=pk)
    form: Form = UploadForm(request.POST, request.FILES, auto_id=_upload_ids(shipment.pk))
    if form.is_valid():
        try:
            upload = services.temperatures_upload(actor=request_actor(request), shipment=shipment, source="csv",
                                                  csv_text=form.cleaned_data["csv_file"])
        except ValidationError as exc:
            for message in exc.message_dict.get("csv_text", exc.messages):
                form.add_error("csv_file", message)
        else:
            if upload.deviation is not None:
                messages.warning(request, f"{upload.readings} readings stored; excursion found, deviation "
                                          f"{upload.deviation.reference} is open.")
            else:
                messages.success(request, f"{upload.readings} readings stored, all within the limits.")
            return redirect(reverse("custody:order", args=[shipment.order_id]) + "#shipments")
    return _order_page(request, shipment.order, status=400, upload_form=form, upload_pk=shipment.pk)


# --- labels ---------------------------------------------------------------------------------------


def _contents(order: TherapyOrder, containers: list[str]) -> list[labels.LabelContent]:
    try:
        return [labels.label_content(order, c) for c in containers]
    except labels.LabelError as exc:
        raise Http404(str(exc)) from exc


class _Refused(Exception):
    """A label request refused with a message naming the field (answered 400)."""


def _drawn(request: HttpRequest, contents: list[labels.LabelContent]) -> tuple[str, list[str]]:
    """The label size asked for (``size``, default 100x70) and each label drawn at it."""
    size = request.POST.get("size") or label_layout.DEFAULT_SIZE
    if size not in label_layout.LABEL_SIZES:
        raise _Refused(f"size: {size[:40]!r} is not a label size; choose one of "
                       f"{', '.join(label_layout.LABEL_SIZES)}.")
    try:
        return size, [labels.label_svg(c, size) for c in contents]
    except label_layout.LabelOverflow as exc:
        raise _Refused(f"size: {exc}") from exc


@requires(Perm.CUSTODY_RECORD)
@require_POST
def label_svg(request: HttpRequest, pk: int, container: str) -> HttpResponse:
    """One container's label as SVG; printing is recorded in the audit trail, so it is a POST."""
    order = _order(request, pk, Perm.CUSTODY_RECORD)
    content = _contents(order, [container])[0]
    try:
        size, svgs = _drawn(request, [content])
    except _Refused as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain")
    services.labels_print(actor=request_actor(request), order=order, containers=[container], fmt="svg")
    response = HttpResponse(svgs[0], content_type="image/svg+xml")
    response["Content-Disposition"] = f'inline; filename="label-{order.pk}-{container}-{size}.svg"'
    return response


@requires(Perm.CUSTODY_RECORD)
@require_POST
def labels_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    """Every label of the order on a printable PDF sheet (a POST: printing is recorded); 503 when
    the PDF engine cannot run."""
    order = _order(request, pk, Perm.CUSTODY_RECORD)
    containers = labels.containers_of(order)
    if not containers:
        raise Http404("The order has nothing to label yet: record a collection first.")
    try:
        import weasyprint  # late: WeasyPrint needs Pango from the system; only the PDF answers 503 without it
    except (ImportError, OSError) as exc:  # WeasyPrint needs Pango and friends from the system
        return HttpResponse(f"PDF output is unavailable on this server ({exc}). Download each label as SVG "
                            "from the order page instead.", status=503, content_type="text/plain")
    try:
        size, svgs = _drawn(request, _contents(order, containers))
    except _Refused as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain")
    services.labels_print(actor=request_actor(request), order=order, containers=containers, fmt="pdf")
    html = render_to_string("custody/labels_pdf.html", {
        "order": order, "size": label_layout.LABEL_SIZES[size],
        "labels": [mark_safe(svg) for svg in svgs],  # noqa: S308 (escaped in labels.label_svg)
    })
    pdf = weasyprint.HTML(string=html, base_url=None).write_pdf()
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="labels-{order.coi or order.pk}.pdf"'
    return response
