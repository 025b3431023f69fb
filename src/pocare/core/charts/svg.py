"""SVG elements written by hand, with every text and attribute escaped in one place, and the
drawing around them: one ``<svg>`` with a ``<title>``, an optional ``<desc>`` and ``aria-labelledby``
pointing at both, so a screen reader says what the chart shows."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from html import escape

#: The colours of every chart. Roles (``ok``, ``bad``…) name what a colour means; callers may also
#: pass a palette name or a ``#rrggbb``.
PALETTE = {
    "ink": "#1c2733", "muted": "#5b6775", "grey": "#8795a1", "grid": "#e3e8ee", "frame": "#b8c2cc",
    "blue": "#2c6fb3", "green": "#2f8f4e", "red": "#c0392b", "amber": "#c48a00", "purple": "#7048e8",
    "band": "#e6f4ea", "shade": "#f4f6f8", "light-blue": "#9cc0e6", "pale-blue": "#e2edfa", "teal": "#0d5f78",
    "white": "#ffffff",
}
ROLES = {"ok": "green", "info": "blue", "bad": "red", "warn": "amber", "line": "blue", "text": "ink"}
FONT_SIZE = 11


def colour(name: str) -> str:
    """The colour of a role or palette name; a ``#rrggbb`` as given; anything else the line colour."""
    if name.startswith("#"):
        return name
    return PALETTE.get(ROLES.get(name, name), PALETTE["blue"])


def esc(value: object) -> str:
    """Text made safe for an element's content or an attribute (``<``, ``&``, ``"`` and ``'``)."""
    return escape(str(value), quote=True)


def num(value: float) -> str:
    """A coordinate or size: integers as they are, other numbers to two decimals at most."""
    if isinstance(value, int):
        return str(value)
    return f"{value:.2f}".rstrip("0").rstrip(".")


#: Attribute names as written (``stroke_width`` → ``stroke-width``), by keyword: a chart writes
#: thousands of attributes from a few dozen names.
_NAMES: dict[str, str] = {}
_SPECIAL = ("&", "<", ">", '"', "'")


def attrs(values: Mapping[str, object]) -> str:
    """`` name="value"`` pairs; ``class_`` is ``class``, other ``_`` are ``-``; ``None`` is left out.
    (The common kinds, float, int and text that needs no escaping, take a short way: a site's
    comparability page writes some 5,000 attributes, issue 15.)"""
    out = []
    for key, value in values.items():
        if value is None or value is False:
            continue
        name = _NAMES.get(key)
        if name is None:
            name = _NAMES[key] = key.rstrip("_").replace("_", "-")
        kind = type(value)
        shown: str
        if kind is float:
            shown = f"{value:.2f}".rstrip("0").rstrip(".")
        elif kind is int:
            shown = str(value)
        elif isinstance(value, str) and kind is str:
            shown = esc(value) if any(c in value for c in _SPECIAL) else value
        elif isinstance(value, float | int) and not isinstance(value, bool):
            shown = num(value)
        else:
            shown = esc(value)
        out.append(f' {name}="{shown}"')
    return "".join(out)


def tag(name: str, body: str | None = None, /, **attributes: object) -> str:
    """``<name …>body</name>``, or ``<name …/>`` without a body. ``body`` is markup: escape text first."""
    if body is None:
        return f"<{name}{attrs(attributes)}/>"
    return f"<{name}{attrs(attributes)}>{body}</{name}>"


def tip(text: str) -> str:
    """A tooltip (and the accessible name) of the element it is put in."""
    return f"<title>{esc(text)}</title>"


def text(x: float, y: float, content: str, *, fill: str = "muted", **attributes: object) -> str:
    """A ``<text>`` with escaped content, in the muted colour unless told."""
    return tag("text", esc(content), x=x, y=y, fill=colour(fill), **attributes)


@dataclass
class Drawing:
    """One SVG picture: add elements to ``parts``, then :meth:`svg`. ``css`` is its class (pages and
    print styles select on it); ``key`` tells apart two drawings that share a title on one page."""

    width: int
    height: int
    title: str
    desc: str = ""
    css: str = "chart"
    key: str = ""
    background: str | None = None
    parts: list[str] = field(default_factory=list)

    @property
    def uid(self) -> str:
        """An id for the title, the description and clip paths, stable for the same chart."""
        seed = f"{self.css}|{self.title}|{self.key}|{self.desc}".encode()
        return "c" + hashlib.sha1(seed, usedforsecurity=False).hexdigest()[:10]

    def add(self, *parts: str) -> None:
        self.parts.extend(parts)

    def svg(self) -> str:
        uid = self.uid
        labelled = f"{uid}-t {uid}-d" if self.desc else f"{uid}-t"
        head = "<svg" + attrs({"xmlns": "http://www.w3.org/2000/svg", "class": self.css, "role": "img",
                               "width": self.width, "height": self.height, "viewBox": f"0 0 {self.width} {self.height}",
                               "style": "max-width:100%;height:auto", "font_family": "sans-serif",
                               "font_size": FONT_SIZE, "aria_labelledby": labelled}) + ">"
        words = tag("title", esc(self.title), id=f"{uid}-t")
        if self.desc:
            words += tag("desc", esc(self.desc), id=f"{uid}-d")
        ground = tag("rect", width=self.width, height=self.height, fill=colour(self.background or "white"))
        return head + words + (ground if self.background else "") + "".join(self.parts) + "</svg>"
