"""Every list page, one way: a FilterSet (shared with the API) with a search box and whitelisted sort
keys, Django's Paginator with the total, and a streaming CSV export of exactly what the filters match.

A view hands :func:`render_list` its FilterSet class, the queryset the person may see (the selector
scopes it by site, so the page, its count and its CSV never show another site's rows) and the CSV
columns; the template includes ``core/_list_controls.html`` and ``core/_pager.html`` and writes its
sortable headers with ``{% sort_header listing "key" "Label" %}``.

Choices, kept the same on every list:

- an unknown ``sort`` key, a search text with a NUL, a malformed filter or ``per_page`` outside
  1–200 is a 400 naming the field and what it allows (the page is shown with the error);
- ``page`` past either end is clamped to the first or last page (a link kept from before a filter
  still lands somewhere); a ``page`` that is not a whole number is a 400;
- the total is ``COUNT(*)``: at these table sizes (10⁴–10⁵ rows a list, with the site filter and an
  index) PostgreSQL counts in milliseconds, and a person needs the true total ("1–50 of 423");
- the CSV is a GET on the same address with ``export=csv``: it reads only, like the page, and is
  written row by row (``StreamingHttpResponse``) so a large export never sits in memory; a cell
  that a spreadsheet would run as a formula (starting with = + - @, tab or carriage return) is
  prefixed with an apostrophe.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

import django_filters
from django import forms
from django.core.paginator import Page, Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from pocare.core import fields

PER_PAGE = 50
MAX_PER_PAGE = 200
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class SortFilter(django_filters.OrderingFilter):  # type: ignore[misc]
    """``sort=key`` or ``sort=-key`` over whitelisted keys; an unknown key is refused by name."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label", _("Sort"))
        super().__init__(*args, **kwargs)
        allowed = ", ".join(k for k, _ in self.extra["choices"])
        self.extra["error_messages"] = {
            "invalid_choice": f"Unknown sort key %(value)s. Allowed: {allowed} (a leading - sorts descending)."
        }


class DateFilter(django_filters.DateFilter):  # type: ignore[misc]
    """A date typed as YYYY-MM-DD (:class:`pocare.core.fields.IsoDateField`, not the browser's
    locale-formatted picker), whose year must lie in the allowed window; any other form is a 400
    naming the filter."""

    field_class = fields.IsoDateField


def date_range(field_name: str, label: Any, *, dates: bool = False) -> tuple[DateFilter, DateFilter]:
    """``<label> from`` and ``until`` filters over a date-time field, or a date field (its name ends
    in ``_date``, or ``dates=True``); both days included."""
    lookup = field_name if dates or field_name.endswith("_date") else field_name + "__date"
    return (DateFilter(field_name=lookup, lookup_expr="gte", label=format_lazy(_("{label} from"), label=label)),
            DateFilter(field_name=lookup, lookup_expr="lte", label=format_lazy(_("{label} until"), label=label)))


class ListFilterSet(django_filters.FilterSet):  # type: ignore[misc]
    """A FilterSet with a search box over ``search_fields`` and a default order.

    Subclasses declare their filters, ``search_fields`` (ORM paths searched case-insensitively),
    ``sort = SortFilter(fields=...)`` and ``default_sort``. The same class is the API's
    ``filterset_class``, so the page and the API filter alike.
    """

    search_fields: ClassVar[Sequence[str]] = ()
    search_help: ClassVar[Any] = ""  # text, or a lazily translated string
    # True when a search path crosses a to-many relation (an order's DINs): matched by id, one row each.
    search_by_id: ClassVar[bool] = False
    default_sort: ClassVar[Sequence[str]] = ("-pk",)
    q = django_filters.CharFilter(method="search", label=_("Search"), max_length=200)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.filters["q"].extra["help_text"] = self.search_help

    def search(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        condition = Q()
        for path in self.search_fields:
            condition |= Q(**{f"{path}__icontains": value.strip()})
        if not value.strip():
            return queryset
        if self.search_by_id:
            return queryset.filter(pk__in=queryset.model._default_manager.filter(condition).values("pk"))
        return queryset.filter(condition)

    def filter_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if not self.form.cleaned_data.get("sort"):
            queryset = queryset.order_by(*self.default_sort)
        queryset = super().filter_queryset(queryset)
        order = queryset.query.order_by
        # A stable order for pagination: rows with equal sort values keep one order across pages.
        return queryset if {"pk", "-pk"} & set(order) else queryset.order_by(*order, "-pk")


class PageForm(forms.Form):
    """The page and the page size; a page past either end is clamped by the paginator."""

    page = forms.IntegerField(required=False, error_messages={"invalid": "page must be a whole number (1, 2, …)."})
    per_page = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_PER_PAGE,
        error_messages={"invalid": f"per_page must be a whole number from 1 to {MAX_PER_PAGE}.",
                        "min_value": f"per_page must be from 1 to {MAX_PER_PAGE}.",
                        "max_value": f"per_page must be from 1 to {MAX_PER_PAGE}."},
    )


Accessor = str | Callable[[Any], Any]


@dataclass(frozen=True)
class Column:
    """One CSV column: its header and how to read it from a row (a dotted path or a function)."""

    header: str
    value: Accessor

    def read(self, row: Any) -> Any:
        if callable(self.value):
            return self.value(row)
        for part in self.value.split("."):
            row = getattr(row, part, None) if row is not None else None
        return row


def csv_cell(value: Any) -> str:
    """One cell as text a spreadsheet shows and never runs: a formula start gets an apostrophe."""
    if value is None:
        return ""
    if isinstance(value, int | float | Decimal):
        return str(value)  # a number, negative too, is data a spreadsheet reads as a number
    if isinstance(value, dt.datetime):
        value = value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    elif isinstance(value, dt.date):
        value = value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_rows(columns: Sequence[Column], rows: Iterable[Any]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow([c.header for c in columns])
    for row in rows:
        yield writer.writerow([csv_cell(c.read(row)) for c in columns])


def csv_response(columns: Sequence[Column], queryset: QuerySet[Any], name: str) -> StreamingHttpResponse:
    """Stream the queryset as CSV (read in chunks, never whole into memory)."""
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response = StreamingHttpResponse(csv_rows(columns, queryset.iterator(chunk_size=2000)),
                                     content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="pocare-{name}-{stamp}.csv"'
    return response


@dataclass
class Listing:
    """What a list template reads: the filter form, the page, the query string without the page,
    the current sort and any errors."""

    filter: ListFilterSet
    page: Page[Any] | None
    query: QueryDict
    errors: dict[str, list[str]] = field(default_factory=dict)
    rows: Any = None

    def __post_init__(self) -> None:
        if self.rows is None and self.page is not None:
            self.rows = self.page.object_list

    @property
    def sort(self) -> str:
        return self.query.get("sort", "")

    def url_with(self, **changes: Any) -> str:
        query = self.query.copy()
        for key, value in changes.items():
            query.pop(key, None)
            if value not in (None, ""):
                query[key] = str(value)
        return "?" + query.urlencode()

    @property
    def base_query(self) -> str:
        """The filters as a query string, without the page (for pager links)."""
        return self.query.urlencode()

    @property
    def csv_url(self) -> str:
        return self.url_with(export="csv")


def list_state(request: HttpRequest, filterset_class: type[ListFilterSet], queryset: QuerySet[Any],
               data: QueryDict | None = None) -> Listing:
    """Filter, sort and paginate ``queryset`` from the request's query string."""
    data = data if data is not None else request.GET
    filterset = filterset_class(data, queryset=queryset, request=request)
    paging = PageForm(data)
    query = data.copy()
    for key in ("page", "export"):
        query.pop(key, None)
    errors: dict[str, list[str]] = {}
    if not filterset.is_valid():
        errors.update({k: [str(m) for m in v] for k, v in filterset.errors.items()})
    if not paging.is_valid():
        errors.update({k: [str(m) for m in v] for k, v in paging.errors.items()})
    if errors:
        return Listing(filter=filterset, page=None, query=query, errors=errors)
    per_page = paging.cleaned_data["per_page"] or PER_PAGE
    number = max(1, paging.cleaned_data["page"] or 1)
    paginator = Paginator(filterset.qs, per_page)
    return Listing(filter=filterset, page=paginator.get_page(min(number, paginator.num_pages)), query=query)


def render_list(
    request: HttpRequest, template: str, *, filterset_class: type[ListFilterSet], queryset: QuerySet[Any],
    columns: Sequence[Column], name: str, context: dict[str, Any] | None = None,
    data: QueryDict | None = None, status: int = 200, decorate: Callable[[list[Any]], Any] | None = None,
) -> HttpResponseBase:
    """The list page, its 400 (the page with the errors named) or, with ``export=csv``, its CSV.
    ``status`` is the page's own (a 400 when a form posted on the page was refused); ``decorate``
    turns the page's rows into what the template reads (``listing.rows``), e.g. with a computed flag."""
    listing = list_state(request, filterset_class, queryset, data)
    export = request.method == "GET" and request.GET.get("export") == "csv"
    if listing.errors:
        if export:
            text = "; ".join(f"{k}: {' '.join(v)}" for k, v in listing.errors.items())
            return HttpResponse(f"Invalid list parameters: {text}", status=400, content_type="text/plain")
        return render(request, template, {**(context or {}), "listing": listing}, status=400)
    if export:
        return csv_response(columns, listing.filter.qs, name)
    if decorate is not None and listing.page is not None:
        listing.rows = decorate(list(listing.page.object_list))
    return render(request, template, {**(context or {}), "listing": listing}, status=status)
