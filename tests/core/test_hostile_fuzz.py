"""Hostile fuzzers (issue 13): every HTML form and every API write endpoint gets hostile values —
extreme numbers and dates, NUL, lone surrogates, deep nesting, huge strings — and must answer
below 500; a refusal (400/413) must store no ledger event (other than a recorded failed attempt).

The routes and the objects their URLs name come from the permission matrix (which walks the URL
resolver), so a new form or endpoint is fuzzed the moment it exists. Case counts are bounded by
``POCARE_FUZZ_FORM_CASES`` / ``POCARE_FUZZ_API_CASES`` (defaults keep each test near a minute) and
printed with ``-s``: ``form fuzz: N cases, 0 answers >= 500``.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import pytest
from django.urls import reverse

from pocare.accounts.roles import ROLE_PERMS, Perm
from pocare.ledger.models import Event
from tests.conftest import PASSWORD
from tests.test_permission_matrix import OWN, PERSONAS, ROLE_OF, ROUTES, Route

pytestmark = pytest.mark.django_db

FORM_CASES = int(os.environ.get("POCARE_FUZZ_FORM_CASES", "3000"))
#: Hostile values per form field: each field gets the next few of HOSTILE_FORM in turn, so every
#: value reaches every kind of field somewhere while every form stays within the budget.
PER_FIELD = int(os.environ.get("POCARE_FUZZ_PER_FIELD", "4"))
API_CASES = int(os.environ.get("POCARE_FUZZ_API_CASES", "1500"))

#: Failed attempts are recorded by design (P11-300), refusal or not.
ATTEMPT_EVENTS = {"accounts.login_failed", "accounts.user_locked", "ledger.signing_failed"}
#: Forms that end or change the session itself; fuzzed by tests/accounts, not here.
SKIP_ACTIONS = ("/logout/", "/login/", "/password/", "/account/password")
REFUSED = (400, 413)

# Hostile form values, as raw bytes (a lone surrogate cannot be written as UTF-8 text: a hostile
# client sends its CESU bytes \xed\xa0\x80, or its escape in JSON).
HOSTILE_FORM: list[tuple[str, bytes]] = [
    ("nul", b"a\x00b"),
    ("surrogate-bytes", b"x\xed\xa0\x80y"),
    ("400-digits", b"9" * 400),
    ("beyond-double", b"1e400"),
    ("nan", b"NaN"),
    ("year-1-local", b"0001-01-01T00:00"),
    ("year-9999-offset", b"9999-12-31T23:59:59-05:00"),
    ("year-1-date", b"0001-01-01"),
    ("nested-brackets", b"[" * 20_000 + b"]" * 20_000),
    ("huge-string", b"x" * 500_000),
    ("negative-huge", b"-" + b"9" * 40),
]

HOSTILE_JSON: list[tuple[str, str]] = [  # JSON text of the value put in place of one field
    ("nul", json.dumps("a\x00b")),
    ("surrogate", '"x\\ud800y"'),
    ("400-digits", "9" * 400),
    ("5000-digits", "9" * 5000),
    ("beyond-double", "1e400"),
    ("minus-beyond-double", "-1e400"),
    ("nan", "NaN"),
    ("infinity", "Infinity"),
    ("year-1-offset", '"0001-01-01T00:00:00+05:00"'),
    ("year-9999-offset", '"9999-12-31T23:59:59-05:00"'),
    ("nested-40", "[" * 40 + "1" + "]" * 40),
    ("nested-3000", "[" * 3000 + "1" + "]" * 3000),
    ("object-nested-100", '{"a":' * 100 + "1" + "}" * 100),
    ("huge-string", json.dumps("x" * 1_000_000)),
    ("null", "null"),
    ("empty-object", "{}"),
    ("bool", "true"),
]


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)


class FormParser(HTMLParser):
    """The forms of a page with each field's first value (selected option, checked box, text)."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url, self.forms, self._form, self._select, self._textarea = url, [], None, None, None
        self._first_option: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            action = a.get("action") or a.get("hx-post") or self.url
            method = "post" if a.get("hx-post") else (a.get("method") or "get").lower()
            self._form = Form(urllib.parse.urljoin(self.url, action), method)
            self.forms.append(self._form)
        elif self._form is None or not a.get("name"):
            if tag == "option" and self._select and self._form is not None:
                name = self._select
                if name not in self._first_option or "selected" in a:
                    self._first_option[name] = a.get("value", "")
                    self._form.fields[name] = a.get("value", "")
            return
        elif tag == "input":
            kind = a.get("type", "text").lower()
            if kind in ("submit", "button", "image", "reset", "file"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a and a["name"] in self._form.fields:
                return
            self._form.fields[a["name"]] = a.get("value", "on" if kind == "checkbox" else "")
            self._form.kinds[a["name"]] = kind
        elif tag == "select":
            self._select = a["name"]
            self._form.fields.setdefault(a["name"], "")
            self._form.kinds[a["name"]] = "select"
        elif tag == "textarea":
            self._textarea = a["name"]
            self._form.fields[a["name"]] = ""
            self._form.kinds[a["name"]] = "textarea"

    def handle_data(self, data: str) -> None:
        if self._textarea and self._form is not None:
            self._form.fields[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def _encode(fields: dict[str, str | bytes]) -> bytes:
    return urllib.parse.urlencode({k: v.encode() if isinstance(v, str) else v for k, v in fields.items()}).encode()


def _events_since(before: int) -> list[str]:
    return list(Event.objects.filter(pk__gt=before).values_list("event_type", flat=True))


def _last_event() -> int:
    return Event.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def _writers() -> list[str]:
    """One persona per role that may write something (the read-only roles have no forms to post);
    those who manage accounts last, since their forms may lock or deactivate the other personas."""
    writers = [p for p in PERSONAS if ROLE_OF[p].value not in ("inspector",)]
    return sorted(writers, key=lambda p: Perm.ACCOUNTS_MANAGE in ROLE_PERMS[ROLE_OF[p]])


def _pages(username: str) -> Iterator[str]:
    role = ROLE_OF[username]
    for route in ROUTES:
        if route.is_api or "GET" not in route.allowed_methods():
            continue
        if route.read_perm not in (None, "signed_in", "public") and route.read_perm not in ROLE_PERMS[role]:
            continue
        try:
            yield reverse(route.name, kwargs=route.kwargs_for(OWN) if route.kwargs_for else None)
        except Exception:  # noqa: S112 (an object this persona's site lacks: the matrix covers it)
            continue


def test_every_html_form_answers_hostile_values_below_500_and_stores_nothing_on_refusal(client, login, capsys):
    """DI-ALCOA P11-10g: every form on every page (found by the first role that sees it) gets hostile
    values in each field in turn, the other fields as the page fills them and the signer's own
    credentials in signing fields: never a 5xx; a 400/413 stores no ledger event."""
    client.raise_request_exception = False  # a 500 is counted, not raised
    cases, server_errors, stored, turn = 0, [], [], 0
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for username in _writers():
        client.logout()
        login(username)
        for url in _pages(username):
            page = client.get(url)
            if page.status_code != 200 or "html" not in page.get("Content-Type", ""):
                continue
            parser = FormParser(url)
            parser.feed(page.content.decode())
            for form in parser.forms:
                if any(s in form.action for s in SKIP_ACTIONS):
                    continue
                key = (form.action, tuple(sorted(form.fields)))
                if key in seen:
                    continue
                seen.add(key)
                base: dict[str, str | bytes] = dict(form.fields)
                for name in base:
                    if name.endswith("username"):
                        base[name] = username
                    elif name.endswith("password"):
                        base[name] = PASSWORD
                targets = [n for n in base if n != "csrfmiddlewaretoken" and not n.endswith(("password", "username"))]
                for name in targets:
                    turn += 1
                    for k in range(PER_FIELD):
                        label, value = HOSTILE_FORM[(turn * PER_FIELD + k) % len(HOSTILE_FORM)]
                        if cases >= FORM_CASES:
                            break
                        cases += 1
                        before = _last_event()
                        data = {**base, name: value}
                        if form.method == "post":
                            response = client.post(form.action, _encode(data),
                                                   content_type="application/x-www-form-urlencoded")
                        else:
                            response = client.get(form.action + "?" + _encode(data).decode())
                        where = f"{username} {form.method.upper()} {form.action} {name}={label}"
                        if response.status_code >= 500:
                            server_errors.append(where)
                        elif response.status_code in REFUSED:
                            extra = [e for e in _events_since(before) if e not in ATTEMPT_EVENTS]
                            if extra:
                                stored.append(f"{where}: {extra}")
                        if response.status_code == 302 and "/login/" in response.get("Location", ""):
                            login(username)  # the form ended the session (e.g. an idle check): go on
    with capsys.disabled():
        print(f"\nform fuzz: {cases} cases over {len(seen)} forms, {len(server_errors)} answers >= 500, "
              f"{len(stored)} refusals that stored events")
    assert cases > 200, "the crawl found too few forms to mean anything"
    assert not server_errors, server_errors[:20]
    assert not stored, stored[:20]


# --- the API -------------------------------------------------------------------------------------------


def _schema() -> dict[str, Any]:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    if "allOf" in node:
        return _resolve(schema, node["allOf"][0])
    if "oneOf" in node:
        return _resolve(schema, node["oneOf"][0])
    return node


def _example(schema: dict[str, Any], node: dict[str, Any], username: str, depth: int = 0) -> Any:
    """A plausible value for a schema node: enough to get past the serializer to the field under attack."""
    node = _resolve(schema, node)
    if "enum" in node:
        return next((v for v in node["enum"] if v not in (None, "")), None)
    kind = node.get("type", "object")
    if kind == "object" and depth < 4:
        return {name: _example(schema, sub, username, depth + 1) if name not in ("username", "password")
                else (username if name == "username" else PASSWORD)
                for name, sub in node.get("properties", {}).items()}
    if kind == "array":
        return [_example(schema, node.get("items", {}), username, depth + 1)]
    if kind == "integer":
        return max(1, int(node.get("minimum", 1)))
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    return {"date-time": "2026-03-01T08:00:00+01:00", "date": "2026-03-01"}.get(node.get("format", ""), "text")


def _paths(body: Any, where: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in the example body (fields, and fields of the first item of lists)."""
    if isinstance(body, dict):
        for key, value in body.items():
            if key in ("username", "password"):
                continue
            yield (*where, key)
            yield from _paths(value, (*where, key))
    elif isinstance(body, list) and body:
        yield from _paths(body[0], (*where, 0))


def _with(body: Any, path: tuple[Any, ...], marker: str) -> Any:
    if not path:
        return marker
    copy = dict(body) if isinstance(body, dict) else list(body)
    copy[path[0]] = _with(copy[path[0]], path[1:], marker)  # type: ignore[index]
    return copy


def _writer_of(route: Route) -> str | None:
    perm = route.write_perm or route.read_perm
    site_people = [p for p in PERSONAS if "." in p]  # a person at the object's own site first
    for username in [*site_people, *[p for p in PERSONAS if "." not in p]]:
        if perm in ROLE_PERMS[ROLE_OF[username]] and ROLE_OF[username].value != "inspector":
            return username
    return None


def test_every_api_write_endpoint_answers_hostile_json_below_500_and_stores_nothing_on_refusal(client, people, capsys):
    """DI-ALCOA P11-10h: every API write endpoint, called by a person who may use it, gets each hostile
    JSON value in each field of a plausible body in turn (and hostile whole bodies): never a 5xx;
    a 400/413 stores no ledger event."""
    import re

    from pocare.accounts.services import token_issue

    client.raise_request_exception = False  # a 500 is counted, not raised
    schema = _schema()
    templates = {re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$"): ops for p, ops in schema["paths"].items()}
    cases, server_errors, stored, endpoints = 0, [], [], 0
    tokens: dict[str, str] = {}
    for route in ROUTES:
        if not route.is_api or "POST" not in route.allowed_methods() or route.name == "api-token-revoke":
            continue
        username = _writer_of(route)
        if username is None:
            continue
        if username not in tokens:
            tokens[username] = token_issue(actor=None, user=people[username], name="fuzz", reason="fuzz")[1]
        url = reverse(route.name, kwargs=route.kwargs_for(OWN) if route.kwargs_for else None)
        ops = next((ops for rx, ops in templates.items() if rx.match(url)), {})
        content = ops.get("post", {}).get("requestBody", {}).get("content", {}).get("application/json", {})
        body = _example(schema, content.get("schema", {"type": "object"}), username)
        endpoints += 1
        bodies = [(f"{'.'.join(map(str, p))}={label}",
                   json.dumps(_with(body, p, "\x01HOSTILE\x01")).replace('"\\u0001HOSTILE\\u0001"', text))
                  for p in _paths(body) for label, text in HOSTILE_JSON]
        bodies += [(f"body={label}", text) for label, text in HOSTILE_JSON]
        bodies.append(("body=not-json", "{'rows': ["))
        for where, text in bodies:
            if cases >= API_CASES:
                break
            cases += 1
            before = _last_event()
            response = client.post(url, text, content_type="application/json",
                                   HTTP_AUTHORIZATION=f"Bearer {tokens[username]}",
                                   HTTP_IDEMPOTENCY_KEY=f"fuzz-{cases}")
            label = f"{username} POST {url} {where}"
            if response.status_code >= 500:
                server_errors.append(label)
            elif response.status_code in REFUSED:
                extra = [e for e in _events_since(before) if e not in ATTEMPT_EVENTS]
                if extra:
                    stored.append(f"{label}: {extra}")
    with capsys.disabled():
        print(f"\napi fuzz: {cases} cases over {endpoints} endpoints, {len(server_errors)} answers >= 500, "
              f"{len(stored)} refusals that stored events")
    assert endpoints >= 15 and cases > 200
    assert not server_errors, server_errors[:20]
    assert not stored, stored[:20]
