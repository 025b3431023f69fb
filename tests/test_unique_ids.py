"""Every id on a page is unique: a page with several forms that render the same Django form gives each
its own ids (``auto_id``), so a label, an ``aria-describedby`` or a ``#fragment`` names the field of
*its* form. The browser walk (tests/e2e/test_accessibility.py) checks the main pages with axe; this
walk parses every HTML page of the web UI, as the permission matrix names them, without a browser."""

from __future__ import annotations

from collections import Counter
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from tests.test_get_never_writes import GET_ROUTES
from tests.test_permission_matrix import OWN

pytestmark = pytest.mark.django_db


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: Counter[str] = Counter()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids.update(value for name, value in attrs if name == "id" and value)


def duplicate_ids(html: str) -> dict[str, int]:
    parser = _Ids()
    parser.feed(html)
    return {name: n for name, n in parser.ids.items() if n > 1}


def test_the_parser_finds_a_duplicate_id():
    """The check can fail: two forms that render the same field with Django's default ids."""
    html = '<form><input id="id_reason"></form><form><label for="id_reason"></label><input id="id_reason"></form>'
    assert duplicate_ids(html) == {"id_reason": 2}
    assert duplicate_ids('<input id="impact-reason"><input id="close-reason">') == {}


@pytest.mark.parametrize("username", ["qa", "manager.mad", "operator.mad"])
def test_no_page_repeats_an_id(client, login, username):
    """Issue 15: duplicate ids on pages with several forms (WCAG 4.1.1/1.3.1: a label must name one
    field). Every GET page of the web UI that the person may open, with its objects at their site."""
    login(username)
    pages, found = 0, {}
    for route in GET_ROUTES:
        if route.is_api:
            continue
        url = reverse(route.name, kwargs=route.kwargs_for(OWN) if route.kwargs_for else None)
        response = client.get(url)
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            continue
        pages += 1
        if duplicates := duplicate_ids(response.content.decode()):
            found[url] = duplicates
    assert not found, "\n".join(f"{url}: {ids}" for url, ids in found.items())
    assert pages >= 10  # the walk really walked
