"""Hostile strategies for the schemathesis API fuzzer (tools/api_fuzz.py; issue 13).

Schemathesis draws requests that fit the OpenAPI schema. These hooks turn some of them hostile:
one value of the JSON body, or of the query string, is replaced by something an attacker or a
broken client sends (a time at year 1 or 9999 with an offset, NUL, a 400-digit
number, JSON nested 200 deep, a 300,000-character string). Every answer must still be below 500
(the fuzzer's check). Lone surrogates, NaN and Infinity are not here: the HTTP client cannot send
them (it encodes bodies and URLs as strict UTF-8 and JSON); tests/core/test_hostile_fuzz.py posts
them as raw bytes to every write endpoint instead.
"""

from __future__ import annotations

import copy
from typing import Any

import schemathesis
from hypothesis import strategies as st

HOSTILE: list[Any] = [
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
    "0000-00-00T00:00:00Z",
    "nul\x00inside",
    10**400,
    -(10**40),
    "9" * 400,
    "x" * 300_000,
    [],
    {},
    True,
]
_DEEP: Any = "bottom"
for _ in range(200):
    _DEEP = [_DEEP]
HOSTILE.append(_DEEP)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value that holds a scalar (or an empty container)."""
    if isinstance(value, dict) and value:
        return [p for k, v in value.items() for p in _paths(v, (*path, k))]
    if isinstance(value, list) and value:
        return [p for i, v in enumerate(value) for p in _paths(v, (*path, i))]
    return [path] if path else []


def _replaced(value: Any, path: tuple[Any, ...], hostile: Any) -> Any:
    changed = copy.deepcopy(value)
    target = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = hostile
    return changed


def _hostile_variant(value: Any) -> Any:
    """The value as drawn, or (as often as hypothesis chooses) with one place made hostile."""
    paths = _paths(value)
    if not paths:
        return st.just(value)
    hostile = st.tuples(st.sampled_from(paths), st.sampled_from(HOSTILE)).map(
        lambda chosen: _replaced(value, *chosen))
    return st.one_of(st.just(value), hostile)


@schemathesis.hook
def flatmap_body(ctx: Any, body: Any) -> Any:
    return _hostile_variant(body) if isinstance(body, dict | list) else st.just(body)


@schemathesis.hook
def flatmap_query(ctx: Any, query: Any) -> Any:
    if not isinstance(query, dict) or not query:
        return st.just(query)
    # Query values stay under the server's request-line limit; the body carries the huge string.
    text_values = [str(v) for v in HOSTILE
                   if (isinstance(v, str) and len(v) < 10_000) or (isinstance(v, int) and not isinstance(v, bool))]
    return st.one_of(st.just(query), st.tuples(st.sampled_from(sorted(query)), st.sampled_from(text_values)).map(
        lambda chosen: {**query, chosen[0]: chosen[1]}))
