"""Where each part of a label goes, so that every field prints whole and nothing overlaps (LABEL).

A label has three areas that never share space: the fields at the top (caption column and value
column, each value wrapped onto as many lines as it needs), and below them the Code 128 bar code
on the left and the 2-D code in its own square on the right. The text size is the largest, down to
:data:`MIN_TEXT_MM`, at which every wrapped field fits above the codes; a label whose fields do not
fit even then is refused rather than cut (:class:`LabelOverflow`).

Text is measured with the metrics of the font the label names (DejaVu Sans, the font WeasyPrint and
the SVG use), read through Pillow; where that font is not installed, widths are over-estimated so
that a line wraps early rather than runs over. Units are millimetres, y downwards, text placed at its
baseline as in SVG. No Django here: the layout is a pure function of the text and the label size.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from PIL import ImageFont  # installed with WeasyPrint, which needs it for images

#: Font files whose metrics the layout uses (the label's SVG asks for DejaVu Sans first).
FONT_FILES = {False: "DejaVuSans.ttf", True: "DejaVuSans-Bold.ttf"}
#: Ascent and descent of DejaVu Sans, in ems: what a line needs above and below its baseline.
ASCENT, DESCENT = 0.93, 0.24
LINE = 1.25  # line height in ems: more than ascent + descent, so lines never touch
MAX_TEXT_MM, MIN_TEXT_MM = 3.0, 1.7  # 1.7 mm ≈ 4.8 pt, the smallest text left on a label
CAPTION_RATIO = 0.85  # captions are smaller than the values they name
_MEASURE_PX = 200


class LabelOverflow(ValueError):
    """The label's fields do not fit the label size even at the smallest text."""


@dataclass(frozen=True)
class LabelSize:
    """A label stock: its name (as chosen on the order page), width and height in millimetres."""

    name: str
    width: float
    height: float
    description: str

    @property
    def margin(self) -> float:
        return 3.0

    @property
    def code_size(self) -> float:
        """The side of the 2-D code's square."""
        return round(min(self.height * 0.3, self.width * 0.26, 26.0), 1)


#: The label stocks the code lays out (ISBT 128 ST-011 uses 100 × 100 mm for the final product).
LABEL_SIZES = {
    "100x70": LabelSize("100x70", 100, 70, "100 × 70 mm"),
    "100x100": LabelSize("100x100", 100, 100, "100 × 100 mm (ISBT 128 base label, 4 × 4 in)"),
}
DEFAULT_SIZE = "100x70"


@dataclass(frozen=True)
class Text:
    x: float
    y: float  # baseline
    size: float
    text: str
    bold: bool = False
    grey: bool = False


@dataclass
class Layout:
    """Everything a label draws, placed."""

    size: LabelSize
    texts: list[Text] = field(default_factory=list)
    barcode: tuple[float, float, float, float] = (0, 0, 0, 0)  # x, y, width, height of the bars
    barcode_text: Text | None = None
    qr: tuple[float, float, float] = (0, 0, 0)  # x, y, side


@functools.cache
def _font(bold: bool) -> ImageFont.FreeTypeFont | None:
    try:
        return ImageFont.truetype(FONT_FILES[bold], _MEASURE_PX)
    except OSError:  # the font is not installed: measure conservatively instead
        return None


def text_width(text: str, size: float, *, bold: bool = False) -> float:
    """The width of ``text`` at ``size`` mm (em height)."""
    font = _font(bold)
    if font is None:
        return len(text) * size * (0.8 if bold else 0.72)  # wider than DejaVu's average glyphs
    return float(font.getlength(text)) / _MEASURE_PX * size


def wrap(text: str, width: float, size: float, *, bold: bool = False) -> list[str]:
    """``text`` broken into lines no wider than ``width``: at spaces, and inside a word only when the
    word alone is wider than a line."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if text_width(candidate, size, bold=bold) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = word
        while text_width(current, size, bold=bold) > width:  # a word wider than the line: split it
            cut = max(
                1,
                max(
                    i for i in range(1, len(current) + 1) if text_width(current[:i], size, bold=bold) <= width or i == 1
                ),
            )
            lines.append(current[:cut])
            current = current[cut:]
    if current or not lines:
        lines.append(current)
    return lines


def _fields_at(
    fields: list[tuple[str, str]], size: float, x: float, right: float
) -> tuple[float, list[tuple[str, list[str]]]]:
    """Caption column end and each field's wrapped value lines at text size ``size``."""
    caption_size = size * CAPTION_RATIO
    value_x = x + max(text_width(c, caption_size) for c, _ in fields) + 2.0
    return value_x, [(c, wrap(v or "—", right - value_x, size, bold=True)) for c, v in fields]


def _fields_height(wrapped: list[tuple[str, list[str]]], size: float) -> float:
    lines = sum(len(v) for _, v in wrapped)
    return lines * size * LINE + (len(wrapped) - 1) * size * 0.25


def layout(title: str, fields: list[tuple[str, str]], barcode: str, size: LabelSize) -> Layout:
    """Place the title, the fields, the bar code (encoding ``barcode``, written under it) and the 2-D
    code on a label of ``size``."""
    m, q = size.margin, size.code_size
    out = Layout(size)
    title_size = min(4.0, (size.width - 2 * m) / max(text_width(title, 1.0, bold=True), 1e-6))
    out.texts.append(Text(m, m + title_size * ASCENT, title_size, title, bold=True))
    top = m + title_size * (ASCENT + DESCENT) + 1.5
    codes_top = size.height - m - q
    room = codes_top - 1.5 - top
    text_size = MAX_TEXT_MM
    while True:
        value_x, wrapped = _fields_at(fields, text_size, m, size.width - m)
        if _fields_height(wrapped, text_size) <= room:
            break
        if text_size <= MIN_TEXT_MM:
            raise LabelOverflow(
                f"The label's fields do not fit a {size.description} label even at "
                f"{MIN_TEXT_MM} mm text: choose a larger label."
            )
        text_size = round(max(MIN_TEXT_MM, text_size - 0.1), 2)
    y = top + text_size * ASCENT
    for caption, lines in wrapped:
        out.texts.append(Text(m, y, text_size * CAPTION_RATIO, caption, grey=True))
        for line in lines:
            out.texts.append(Text(value_x, y, text_size, line, bold=True))
            y += text_size * LINE
        y += text_size * 0.25
    _codes(out, codes_top, barcode)
    return out


def _codes(out: Layout, codes_top: float, barcode: str) -> None:
    """The bar code (with its human-readable line) left, the 2-D code right, side by side."""
    size, m, q = out.size, out.size.margin, out.size.code_size
    out.qr = (size.width - m - q, codes_top, q)
    quiet = 1.5  # with the margin, the quiet zone a scanner needs on each side of the bars
    bars_width = size.width - 2 * m - q - 4.0 - 2 * quiet
    caption = min(2.0, bars_width / max(text_width(barcode, 1.0), 1e-6))
    out.barcode = (m + quiet, codes_top, bars_width, q - caption * (ASCENT + DESCENT) - 0.8)
    x = m + quiet + (bars_width - text_width(barcode, caption)) / 2
    out.barcode_text = Text(x, size.height - m - caption * DESCENT, caption, barcode)
