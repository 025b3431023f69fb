"""Every sort key an API list offers sorts, both ways (the schemathesis run of CI found
``/api/sites/?sort=units`` answering 500: the page's queryset counted the units, the API's did not).

The lists are found by walking the URL resolver (``tests/test_permission_matrix.py``), so a new list
or a new sort key is tried the day it is added."""

from __future__ import annotations

import pytest
from django.urls import reverse

from pocare.core.listing import SortFilter
from tests.test_get_never_writes import GET_ROUTES
from tests.test_permission_matrix import OWN

pytestmark = pytest.mark.django_db


def _sort_keys(route) -> list[str]:  # type: ignore[no-untyped-def]
    cls = getattr(route.view, "view_class", None) or getattr(route.view, "cls", None)
    filterset = getattr(cls, "filterset_class", None)
    sort = filterset.base_filters.get("sort") if filterset is not None else None
    return [key for key, _ in sort.extra["choices"]] if isinstance(sort, SortFilter) else []


SORTED_LISTS = [r for r in GET_ROUTES if r.is_api and _sort_keys(r)]


def test_the_walk_finds_the_sorted_api_lists():
    assert len(SORTED_LISTS) >= 10, [r.name for r in SORTED_LISTS]


@pytest.mark.parametrize("route", SORTED_LISTS, ids=lambda r: r.name)
def test_every_sort_key_of_an_api_list_sorts_both_ways(client, login, route):
    """DI-ALCOA: a list sorted by any key it offers answers, in either direction; an unknown key is a
    400 that names the allowed ones."""
    login("qa")
    url = reverse(route.name, kwargs=route.kwargs_for(OWN) if route.kwargs_for else None)
    keys = _sort_keys(route)
    failures = {}
    assert any(k.startswith("-") for k in keys)  # the filter offers each key both ways
    for sort in keys:
        response = client.get(url, {"sort": sort})
        if response.status_code == 403:
            pytest.skip(f"{route.name}: not a list Control Site QA reads")
        if response.status_code != 200:
            failures[sort] = response.status_code
    assert not failures, f"{url}: {failures}"
    refused = client.get(url, {"sort": "no-such-key"})
    assert refused.status_code == 400 and keys[0] in refused.content.decode()
