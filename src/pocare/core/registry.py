"""Questions that go up the layers without an import (docs/architecture.md, "Asking upward").

An app may import only the apps below it. Sometimes a lower app must still ask something that a
higher app knows: custody cannot dispatch a product that the QP has not certified (release sits
above custody), a signature needs the person's password checked (accounts sits above the ledger),
and the coming patients and supply apps will hold batches for a withdrawn consent or a recalled
lot. The lower app declares a :class:`Question` in its own ``questions.py``; each higher app that
knows an answer registers a function with it in its ``AppConfig.ready()``; the lower app asks.

Unlike a Django signal, a question says who answers: :attr:`Question.answerers` names every
registered function, ``tests/test_architecture.py`` pins them, and a question that must have an
answer refuses to be asked without one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.core.exceptions import ImproperlyConfigured

A = TypeVar("A")

#: Every question declared, by name, for the docs and the architecture test.
QUESTIONS: dict[str, Question[Any]] = {}


class Question(Generic[A]):
    """One question a lower app asks of the apps above it.

    ``ask(...)`` calls every answerer with the same arguments, in the order they registered, and
    returns their answers in a list. With ``single=True`` exactly one answerer must register, and
    :meth:`ask_one` returns its answer. A ``required`` question fails closed: asked while no app
    answers it, it refuses instead of answering "nothing holds this" by default.
    """

    def __init__(self, name: str, doc: str, *, single: bool = False, required: bool = False) -> None:
        if name in QUESTIONS:
            raise ImproperlyConfigured(f"The question {name!r} is declared twice.")
        self.name = name
        self.doc = doc
        self.single = single
        self.required = required or single
        self._answerers: list[Callable[..., A]] = []
        QUESTIONS[name] = self

    def __repr__(self) -> str:
        return f"<Question {self.name}: {', '.join(self.answerers) or 'no answerer'}>"

    def register(self, answerer: Callable[..., A]) -> Callable[..., A]:
        """Add ``answerer`` (once; registering it again changes nothing, as ``ready()`` may run twice)."""
        if answerer in self._answerers:
            return answerer
        if self.single and self._answerers:
            raise ImproperlyConfigured(
                f"{self.name} takes one answer; {self.answerers[0]} already gives it.")
        self._answerers.append(answerer)
        return answerer

    def unregister(self, answerer: Callable[..., A]) -> None:
        """Take ``answerer`` back (for tests that answer a question for a while)."""
        if answerer in self._answerers:
            self._answerers.remove(answerer)

    @property
    def answerers(self) -> list[str]:
        """The registered answerers as ``module.function``, in the order they are asked."""
        return [f"{f.__module__}.{f.__qualname__}" for f in self._answerers]

    def each(self) -> list[tuple[str, Callable[..., A]]]:
        """Each answerer with its name, for an asker that must call them one by one (to keep one
        failing answer from hiding the others, or to ask only some)."""
        return list(zip(self.answerers, self._answerers, strict=True))

    def ask(self, *args: Any, **kwargs: Any) -> list[A]:
        """Every answer, in registration order."""
        if self.required and not self._answerers:
            raise ImproperlyConfigured(f"No installed app answers {self.name}.")
        return [answerer(*args, **kwargs) for answerer in self._answerers]

    def ask_one(self, *args: Any, **kwargs: Any) -> A:
        """The one answer of a ``single`` question; refused when no app answers it."""
        return self.ask(*args, **kwargs)[0]
