"""Reading a PDF back as a reader would, for the tests of the documents that leave the building
(certificate, labels): the text of each page with where each word stands, the drawn shapes, and
overlap checks. pdfplumber (pdfminer.six underneath) is an independent extractor: it does not know
how the PDF was made."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pdfplumber
from pdfplumber.page import Page

#: A box as pdfplumber gives it: x0, top, x1, bottom in points from the page's top-left corner.
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Word:
    text: str
    box: Box
    page: int


def keep(name: str, pdf: bytes) -> None:
    """With ``POCARE_KEEP_PDFS=<folder>``, write the PDF there to look at (``pdftoppm -png``)."""
    folder = os.environ.get("POCARE_KEEP_PDFS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / name).write_bytes(pdf)


@contextmanager
def opened(pdf: bytes) -> Iterator[pdfplumber.PDF]:
    with pdfplumber.open(io.BytesIO(pdf)) as doc:
        yield doc


def words(page: Page, number: int = 0) -> list[Word]:
    """The words of a page, each with its box."""
    return [
        Word(w["text"], (w["x0"], w["top"], w["x1"], w["bottom"]), number)
        for w in page.extract_words(keep_blank_chars=False, use_text_flow=True)
    ]


def overlap(a: Box, b: Box, tolerance: float = 0.2) -> bool:
    """The two boxes share an area (touching within ``tolerance`` points does not count)."""
    return (min(a[2], b[2]) - max(a[0], b[0]) > tolerance) and (min(a[3], b[3]) - max(a[1], b[1]) > tolerance)


def inside(inner: Box, outer: Box, tolerance: float = 0.2) -> bool:
    return (
        inner[0] >= outer[0] - tolerance
        and inner[1] >= outer[1] - tolerance
        and inner[2] <= outer[2] + tolerance
        and inner[3] <= outer[3] + tolerance
    )


def union(boxes: Iterable[Box]) -> Box:
    listed = list(boxes)
    return (min(b[0] for b in listed), min(b[1] for b in listed), max(b[2] for b in listed), max(b[3] for b in listed))


def column_text(page: Page, x0: float, x1: float) -> str:
    """The text of one column of a page (between x0 and x1), its lines joined by spaces."""
    crop = page.crop((x0, page.bbox[1], x1, page.bbox[3]), strict=False)  # page.bbox: already cropped?
    return " ".join((crop.extract_text() or "").split())
