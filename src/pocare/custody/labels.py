"""Labels of the chain of identity (LABEL, ISBT-DIN, ISBT-COI, ATMP-TRACE): what each container
carries and how it is drawn.

Three containers: the apheresis **collection bag** (``bag-<collection id>``), the **in-process**
container of the batch (``in-process``) and the **final product** bag (``final``). Each label
shows the unique product identifier and proper name, the recipient id, the date and time the
collection ended with its time zone, the processing facility, the expiry date and time, the DIN
and the COI.

Bar codes: Code 128 (linear, python-barcode) of the DIN (``=`` data identifier, 13 characters and
flags, as ISBT 128 data structure 001) on the bag, of the COI on product containers; and a 2-D
code with the label's content. ISBT 128 prefers DataMatrix for 2-D codes; QR (segno) is used
because a maintained pure-Python encoder exists and scanners read both.

Shelf lives: the final product's expiry is the end of manufacture plus the shelf life the batch's
master-file version states for how the product is kept (``shelf_life.fresh_product_hours`` or
``cryopreserved_product_days``); a version that states none gets no invented date but a label
that says so. The collection bag's expiry is the one recorded with the collection.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

import barcode
import segno
from barcode.writer import SVGWriter

from pocare.core.times import site_time
from pocare.custody import isbt, label_layout
from pocare.custody.models import Collection, HandoffKind, HandoffOutcome, TherapyOrder

if TYPE_CHECKING:
    from pocare.manufacturing.models import Batch

#: The master file's shelf-life field for each way the final product is kept, and its unit.
SHELF_LIFE_FIELDS = {"fresh": ("fresh_product_hours", "hours"), "cryopreserved": ("cryopreserved_product_days", "days")}


def product_shelf_life(batch: Batch, storage: str) -> dt.timedelta | None:
    """The final product's shelf life by how it is kept, as the batch's master-file version states
    it (None when it states none)."""
    name, unit = SHELF_LIFE_FIELDS[storage]
    value = ((batch.masterfile_version.content or {}).get("shelf_life") or {}).get(name)
    return dt.timedelta(**{unit: value}) if value else None


class LabelError(ValueError):
    """The container does not exist for this order (yet)."""


@dataclass(frozen=True)
class LabelContent:
    """What one label says, as text (dates already in the right zone, with the zone)."""

    container: str
    title: str
    product_id: str
    proper_name: str
    recipient_id: str
    collection_end: str
    processing_facility: str
    expiry: str
    din: str
    coi: str
    barcode: str  # what the Code 128 encodes

    def as_record(self) -> dict[str, str]:
        return asdict(self)

    def lines(self) -> list[tuple[str, str]]:
        """(caption, value) in the order they are printed."""
        return [
            ("Product", f"{self.proper_name}"), ("Product id", self.product_id), ("Recipient", self.recipient_id),
            ("COI", self.coi), ("DIN", self.din), ("Collection ended", self.collection_end),
            ("Processing facility", self.processing_facility), ("Expires", self.expiry),
        ]


def _when(value: dt.datetime | None, tz: Any) -> str:
    """A time on a label: the site's time with its zone, as everywhere (:mod:`pocare.core.times`)."""
    if value is None:
        return ""
    return site_time(value, tz) or ""


def containers_of(order: TherapyOrder) -> list[str]:
    """The containers of the order that can be labelled now."""
    found = [f"bag-{c.pk}" for c in order.collections.order_by("pk")]
    if order.coi and _batch(order) is not None:
        found += ["in-process", "final"]
    return found


def _batch(order: TherapyOrder) -> Batch | None:
    """The order's batch, through the reverse of ``Batch.order`` (manufacturing sits above custody)."""
    fresh = (TherapyOrder.objects.select_related("batch__collection", "batch__masterfile_version")
             .get(pk=order.pk))
    batch: Batch | None = getattr(fresh, "batch", None)
    return batch


def _storage(order: TherapyOrder) -> str | None:
    kinds = set(order.handoffs.filter(outcome=HandoffOutcome.COMPLETED,
                                      kind__in=[HandoffKind.CRYOPRESERVATION, HandoffKind.FRESH_HOLD])
                .values_list("kind", flat=True))
    if HandoffKind.CRYOPRESERVATION in kinds:
        return "cryopreserved"
    return "fresh" if HandoffKind.FRESH_HOLD in kinds else None


def label_content(order: TherapyOrder, container: str) -> LabelContent:
    """The content of one container's label (LABEL). Raises :class:`LabelError` for a container the
    order does not have."""
    site = order.site
    facility = f"{site.name}, {site.city} (ISBT 128 facility {site.facility_id})"
    coi = isbt.coi_printed(order.coi) if order.coi else "not assigned"
    if container.startswith("bag-"):
        pk = container[4:]
        collection = order.collections.filter(pk=int(pk)).first() if pk.isdigit() else None
        if collection is None:
            raise LabelError(f"The order has no collection {pk}.")
        tz = collection.collection_site.tz
        return LabelContent(
            container=container, title="Apheresis collection bag", product_id=f"DIN {collection.din_printed}",
            proper_name=f"Apheresis ({'autologous' if collection.autologous else 'allogeneic'}), starting material "
                        f"for {order.product.name}",
            recipient_id=order.recipient_id, collection_end=_when(collection.collection_ended_at, tz),
            processing_facility=facility, expiry=_when(collection.expires_at, tz),
            din=collection.din_printed, coi=coi, barcode=f"={collection.din}{collection.flags}",
        )
    if container not in ("in-process", "final"):
        raise LabelError(f"{container!r} is not a container: bag-<collection id>, in-process or final.")
    batch = _batch(order)
    if batch is None or not order.coi:
        raise LabelError("Product labels exist once manufacture has started.")
    source: Collection = batch.collection
    tz = site.tz
    if container == "in-process":
        expiry = "Not released: in-process material (see the batch record)"
        title, product_id = "In-process container", f"{order.coi}-{batch.reference}-IP"
    else:
        storage = _storage(order)
        end = batch.ended_at
        shelf_life = product_shelf_life(batch, storage) if storage is not None and end is not None else None
        if storage is None or end is None:
            expiry = "Assigned at the end of manufacture"
        elif shelf_life is None:
            expiry = (f"Not set: master file version {batch.masterfile_version.number} states no shelf life "
                      f"for a {storage} product")
        else:
            expiry = _when(end + shelf_life, tz) + f" ({storage})"
        title, product_id = "Final product", f"{order.coi}-{batch.reference}"
    return LabelContent(
        container=container, title=title, product_id=product_id, proper_name=order.product.name,
        recipient_id=order.recipient_id,
        collection_end=_when(source.collection_ended_at, source.collection_site.tz),
        processing_facility=facility, expiry=expiry, din=source.din_printed, coi=coi, barcode=order.coi,
    )


# --- drawing ------------------------------------------------------------------------------------------


def code128_modules(value: str) -> str:
    """The Code 128 symbol of ``value`` as a string of modules (``1`` bar, ``0`` space), encoded
    by python-barcode (start code, data, mod-103 check, stop)."""
    return str(barcode.get("code128", value).build()[0])


def code128_svg(value: str) -> str:
    """A Code 128 symbol as a standalone SVG document (python-barcode's writer; no text line)."""
    out = io.BytesIO()
    barcode.get("code128", value, writer=SVGWriter()).write(
        out, options={"write_text": False, "module_height": 12.0, "quiet_zone": 2.0})
    return out.getvalue().decode("utf-8")


def qr_code(content: LabelContent) -> segno.QRCode:
    """The 2-D code (QR, never Micro QR, error correction M) of the label's content."""
    return segno.make(qr_payload(content), error="m", micro=False)


def qr_svg(content: LabelContent) -> str:
    """The 2-D code as a standalone SVG document."""
    out = io.BytesIO()
    qr_code(content).save(out, kind="svg", scale=4, border=2)
    return out.getvalue().decode("utf-8")


def qr_payload(content: LabelContent) -> str:
    return "\n".join(f"{caption}: {value}" for caption, value in content.lines())


def _bars(modules: str, x: float, y: float, width: float, height: float) -> str:
    """Bars as one SVG path, in the label's units (mm)."""
    unit = width / len(modules)
    runs, i = [], 0
    while i < len(modules):
        if modules[i] == "1":
            j = i
            while j < len(modules) and modules[j] == "1":
                j += 1
            runs.append(f"M{x + i * unit:.3f} {y:.3f}h{(j - i) * unit:.3f}v{height:.3f}h{-(j - i) * unit:.3f}z")
            i = j
        else:
            i += 1
    return f'<path d="{"".join(runs)}" fill="#000"/>'


def _qr_cells(code: segno.QRCode, x: float, y: float, size: float) -> str:
    rows = [list(r) for r in code.matrix]
    cell = size / len(rows)
    d = "".join(f"M{x + c * cell:.3f} {y + r * cell:.3f}h{cell:.3f}v{cell:.3f}h{-cell:.3f}z"
                for r, row in enumerate(rows) for c, dark in enumerate(row) if dark)
    return f'<path d="{d}" fill="#000"/>'


def _text(t: label_layout.Text) -> str:
    weight = ' font-weight="bold"' if t.bold else ""
    fill = "#444" if t.grey else "#000"
    return f'<text x="{t.x:.2f}" y="{t.y:.2f}" font-size="{t.size:.2f}" fill="{fill}"{weight}>{escape(t.text)}</text>'


def label_svg(content: LabelContent, size: str = label_layout.DEFAULT_SIZE) -> str:
    """One label of ``size`` (a key of :data:`label_layout.LABEL_SIZES`) as a standalone SVG whose
    user units are millimetres: every field whole (wrapped, never cut), the bar codes in their own
    areas, drawn as vector paths so that every viewer and the PDF engine print them alike. Raises
    :class:`label_layout.LabelOverflow` when the fields do not fit the size."""
    stock = label_layout.LABEL_SIZES[size]
    placed = label_layout.layout(content.title, content.lines(), content.barcode, stock)
    w, h = stock.width, stock.height
    bx, by, bw, bh = placed.barcode
    qx, qy, qs = placed.qr
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:g}mm" height="{h:g}mm" viewBox="0 0 {w:g} {h:g}" '
        'font-family="DejaVu Sans, Verdana, Arial, sans-serif" role="img" '
        f'aria-label="{escape(content.title)} label">'
        f'<rect x="0.5" y="0.5" width="{w - 1:g}" height="{h - 1:g}" rx="2" fill="#fff" stroke="#000" '
        'stroke-width="0.4"/>'
        + "".join(_text(t) for t in placed.texts)
        + _bars(code128_modules(content.barcode), bx, by, bw, bh)
        + (_text(placed.barcode_text) if placed.barcode_text else "")
        + _qr_cells(qr_code(content), qx, qy, qs)
        + "</svg>"
    )
