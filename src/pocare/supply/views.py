"""Supply pages: the stock of the sites the person may see (read only in this slice, docs/supply.md).
Views parse input and call selectors; selectors decide what is seen."""

from __future__ import annotations

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from pocare.accounts.decorators import requires
from pocare.accounts.roles import Perm
from pocare.supply import selectors


@requires(Perm.SUPPLY_VIEW)
@require_GET
def stock(request: HttpRequest) -> HttpResponseBase:
    """Stock by site, location, material and lot: the sum of the movements, in one query."""
    rows = selectors.stock_levels(user=request.user, by_lot=True, by_location=True)
    return render(request, "supply/stock.html", {"rows": rows, "today": timezone.now().date()})
