"""The label sheet read back from its PDF at every label size (LABEL, ISBT-DIN, ISBT-COI): each
label's fields print whole, no two pieces of text overlap, the bar code and the 2-D code each have
their own area that no text enters, and everything lies inside its label and the page."""

from __future__ import annotations

import pytest

from pocare.custody import label_layout, labels
from pocare.custody.events import CustodyEvent
from pocare.custody.models import HandoffKind, TherapyOrder
from pocare.ledger.models import Event
from tests import pdf_reading as pdfr
from tests.custody.helpers import accepted, collect, completed_batch, scan, to_manufacture

pytestmark = pytest.mark.django_db

PT_PER_MM = 72 / 25.4


@pytest.fixture
def labelled(people) -> TherapyOrder:  # type: ignore[no-untyped-def]
    """An order with all three containers: the bag, the in-process container, the final product."""
    o = accepted("MAD", "LIS")
    c = collect(o)
    to_manufacture(o, c)
    completed_batch(o, c)
    scan(o, HandoffKind.CRYOPRESERVATION, o.coi)
    assert len(labels.containers_of(o)) == 3
    return o


def _sheet(client, login, order: TherapyOrder, size: str) -> bytes:  # type: ignore[no-untyped-def]
    login("physician.mad")
    response = client.post(f"/custody/orders/{order.pk}/labels.pdf", {"size": size})
    assert response.status_code == 200, response.content[:300]
    assert response.content.startswith(b"%PDF")
    pdfr.keep(f"labels-{size}.pdf", response.content)
    return bytes(response.content)


def _clusters(boxes: list[pdfr.Box], gap: float) -> list[pdfr.Box]:
    """Drawn shapes grouped into blocks: shapes closer than ``gap`` points belong to one block
    (the bars of a bar code, the cells of a 2-D code)."""
    blocks: list[pdfr.Box] = []
    for box in sorted(boxes):
        grown = (box[0] - gap, box[1] - gap, box[2] + gap, box[3] + gap)
        touching = [b for b in blocks if pdfr.overlap(grown, b, tolerance=0)]
        blocks = [b for b in blocks if b not in touching] + [pdfr.union([box, *touching])]
    merged = True
    while merged:  # a later shape can join two blocks made earlier
        merged = False
        for i, a in enumerate(blocks):
            for b in blocks[i + 1 :]:
                if pdfr.overlap((a[0] - gap, a[1] - gap, a[2] + gap, a[3] + gap), b, tolerance=0):
                    blocks = [x for x in blocks if x is not a and x is not b] + [pdfr.union([a, b])]
                    merged = True
                    break
            if merged:
                break
    return blocks


def _labels_on(page, size: label_layout.LabelSize) -> list[pdfr.Box]:  # type: ignore[no-untyped-def]
    """The outline of each label on a page (its border, a rectangle with rounded corners), top to bottom."""
    w, h = (size.width - 1) * PT_PER_MM, (size.height - 1) * PT_PER_MM
    found = [
        (r["x0"], r["top"], r["x1"], r["bottom"])
        for r in page.rects + page.curves
        if abs(r["width"] - w) < 1.5 and abs(r["height"] - h) < 1.5
    ]
    return sorted(found, key=lambda b: (b[1], b[0]))


def _read(pdf: bytes, size: label_layout.LabelSize) -> list[dict[str, object]]:
    """Per label: its box, the page box, its words and its drawn blocks."""
    out: list[dict[str, object]] = []
    with pdfr.opened(pdf) as doc:
        for number, page in enumerate(doc.pages):
            words = pdfr.words(page, number)
            shapes = [(o["x0"], o["top"], o["x1"], o["bottom"]) for o in page.rects + page.curves + page.lines]
            for box in _labels_on(page, size):
                crop = page.crop(box, strict=False)
                inner = [s for s in shapes if pdfr.inside(s, box) and (s[2] - s[0]) < (box[2] - box[0]) - 2]
                out.append(
                    {
                        "box": box,
                        "page": (0, 0, page.width, page.height),
                        "text": crop.extract_text() or "",
                        "words": [w for w in words if pdfr.inside(w.box, box)],
                        "blocks": _clusters(inner, gap=2.5 * PT_PER_MM),
                    }
                )
    return out


@pytest.mark.parametrize("size", list(label_layout.LABEL_SIZES))
def test_every_label_field_prints_whole_and_nothing_overlaps(client, login, labelled, size):
    """LABEL ISBT-DIN ISBT-COI: at each label size the PDF holds one label per container; read back,
    each label carries every LABEL field whole (product id and proper name, recipient, collection end
    with its zone, facility, expiry, DIN, COI); no two words overlap; the bar code and the 2-D code are
    two separate blocks that no text enters; everything is inside its label and the page."""
    stock = label_layout.LABEL_SIZES[size]
    found = _read(_sheet(client, login, labelled, size), stock)
    contents = [labels.label_content(labelled, c) for c in labels.containers_of(labelled)]
    assert len(found) == len(contents)
    for content, label in zip(contents, found, strict=True):
        text = "".join(str(label["text"]).split())
        for caption, value in content.lines():
            assert "".join(caption.split()) in text and "".join(value.split()) in text, (content.container, value)
        assert "".join(content.title.split()) in text and "".join(content.barcode.split()) in text
        words: list[pdfr.Word] = label["words"]  # type: ignore[assignment]
        blocks: list[pdfr.Box] = label["blocks"]  # type: ignore[assignment]
        assert pdfr.inside(label["box"], label["page"])  # type: ignore[arg-type]
        for i, a in enumerate(words):
            assert not any(pdfr.overlap(a.box, b.box) for b in words[i + 1 :]), (content.container, a.text)
        assert len(blocks) == 2, f"{content.container}: expected a bar code and a 2-D code, found {blocks}"
        bars, qr = sorted(blocks)
        assert not pdfr.overlap(bars, qr) and pdfr.inside(bars, label["box"]) and pdfr.inside(qr, label["box"])  # type: ignore[arg-type]
        side = stock.code_size * PT_PER_MM
        assert abs((qr[2] - qr[0]) - side) < 1.5 and abs((qr[3] - qr[1]) - side) < 1.5  # the square, whole
        for w in words:
            assert not pdfr.overlap(w.box, bars) and not pdfr.overlap(w.box, qr), (content.container, w.text)


def test_a_label_size_that_is_not_offered_is_refused_and_nothing_is_recorded(client, login, labelled):
    """LABEL P11-10e: an unknown size is a 400 naming the field and the sizes allowed; no printing is
    recorded."""
    login("physician.mad")
    before = Event.objects.filter(event_type=CustodyEvent.LABEL_PRINTED).count()
    for url in (f"/custody/orders/{labelled.pk}/labels.pdf", f"/custody/orders/{labelled.pk}/labels/final.svg"):
        response = client.post(url, {"size": "<b>A0</b>"})
        assert response.status_code == 400 and response["Content-Type"].startswith("text/plain")
        assert b"size" in response.content and b"100x70" in response.content and b"100x100" in response.content
    assert Event.objects.filter(event_type=CustodyEvent.LABEL_PRINTED).count() == before


def test_text_wraps_within_its_width_and_a_label_that_cannot_fit_is_refused():
    """LABEL: a value wraps at spaces (inside a word only when the word is wider than a line), no line
    is wider than the column and no character is lost; fields that cannot fit even at the smallest
    text are refused instead of being cut."""
    text = "Not set: master file version 12 states no shelf life for a fresh product " + "X" * 60
    lines = label_layout.wrap(text, 30.0, 2.5, bold=True)
    assert len(lines) > 2 and all(label_layout.text_width(ln, 2.5, bold=True) <= 30.0 for ln in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    stock = label_layout.LABEL_SIZES["100x70"]
    with pytest.raises(label_layout.LabelOverflow, match="choose a larger label"):
        label_layout.layout("Final product", [("Expires", "word " * 400)], "X", stock)
