"""YAML read within bounds, fast: size, nesting depth, no aliases, numbers of sane size.

PyYAML's pure-Python parser spends minutes on a document of deeply nested brackets and then fails
with RecursionError; a 400 KB text field must be parsed or refused in well under a second. So:

1. the text is checked for size and for characters no YAML may carry (NUL, lone surrogates);
2. one streaming pass over the parser's events (libyaml's C parser when installed) refuses nesting
   deeper than ``max_depth``, more than ``max_nodes`` values, any alias (``*name``: "billion laughs"
   expansion) and numbers with more than 30 digits, each with its line, stopping at the first;
3. only then is the document composed and constructed, once.

Pure module: no Django, no pocare app.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from pocare.core import bounds

MAX_YAML_DEPTH = 24
MAX_YAML_CHARS = 400_000
#: Values (scalars, lists, mappings): the demo master file has 1,175 in 17.5 KB (17 times fewer); a 400 KB
#: document is mostly prose. The bound keeps the worst 400 KB (tiny values only) well under a second.
MAX_YAML_NODES = 20_000

Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class YamlRefused(Exception):
    """The document is outside the bounds: ``line`` (1-based; 0 when unknown) and what is allowed."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


def _line(mark: Any) -> int:
    return int(mark.line) + 1 if mark is not None else 0


def check_events(text: str, *, max_depth: int = MAX_YAML_DEPTH, max_nodes: int = MAX_YAML_NODES) -> None:
    """Stream the parser's events and raise :class:`YamlRefused` at the first one out of bounds.
    YAML syntax errors propagate as ``yaml.YAMLError``."""
    depth = nodes = 0
    for event in yaml.parse(text, Loader=Loader):
        if isinstance(event, yaml.NodeEvent):
            nodes += 1
            if nodes > max_nodes:
                raise YamlRefused(_line(event.start_mark), f"more than {max_nodes:,} values; a master file "
                                                           "needs far fewer")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > max_depth:
                raise YamlRefused(_line(event.start_mark), f"nested deeper than {max_depth} levels; a master "
                                                           "file needs far fewer")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            raise YamlRefused(_line(event.start_mark), f"YAML aliases (*{event.anchor}) are not allowed; write the "
                                                       "value out where it applies")
        elif isinstance(event, yaml.ScalarEvent) and not event.style:  # plain: may be a number
            problem = bounds.number_text_problem(event.value)
            if problem:
                raise YamlRefused(_line(event.start_mark), problem)


def load(text: str, *, max_depth: int = MAX_YAML_DEPTH, max_chars: int = MAX_YAML_CHARS,
         max_nodes: int = MAX_YAML_NODES) -> tuple[Any, Any]:
    """``(root node, data)`` of a single YAML document read within the bounds.

    Raises :class:`YamlRefused` for a document out of bounds, ``yaml.YAMLError`` for bad syntax.
    """
    if len(text) > max_chars:
        raise YamlRefused(0, f"the document has {len(text):,} characters; at most {max_chars:,} are allowed")
    problem = bounds.text_problem(text)
    if problem:
        line = next((n for n, row in enumerate(text.splitlines(), 1) if bounds.text_problem(row)), 0)
        raise YamlRefused(line, problem)
    check_events(text, max_depth=max_depth, max_nodes=max_nodes)
    loader = Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except (ValueError, OverflowError) as exc:  # e.g. a timestamp 2026-13-45: YAML's own types, unreadable
        raise YamlRefused(0, f"a value cannot be read: {exc}") from None
    finally:
        loader.dispose()
    return node, data
