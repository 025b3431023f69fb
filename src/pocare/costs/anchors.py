"""The published figures a cost of CAR-T manufacture is compared with (COST-BATCH; DOMAIN.md, "Cost").
Pure: no Django.

Each anchor keeps its figure in the currency it was published in, what it covers (a hospital price, a
full production cost, a list price) and its source, so that the comparison never hides that "cost
components are rarely comparable between studies" (Stemer et al., Eur J Hosp Pharm 2024). Pounds and
dollars are converted to euros at :data:`TO_EUR`, a rate chosen here (not published with the figures)
and printed beside every converted figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

#: Euros per unit of each currency, to compare figures published in other currencies. An assumption of
#: this module (rounded mid-2020s rates), printed with every converted figure; not part of any source.
TO_EUR = {"EUR": Decimal(1), "GBP": Decimal("1.17"), "USD": Decimal("0.92")}


@dataclass(frozen=True)
class Anchor:
    key: str
    label: str
    low: Decimal  # the figure, or the low end of a published range, in ``currency``
    high: Decimal  # the same as ``low`` for a single figure
    currency: str
    covers: str  # what the figure includes
    source: str

    @property
    def eur_low(self) -> Decimal:
        return (self.low * TO_EUR[self.currency]).quantize(Decimal(1))

    @property
    def eur_high(self) -> Decimal:
        return (self.high * TO_EUR[self.currency]).quantize(Decimal(1))

    @property
    def converted(self) -> bool:
        return self.currency != "EUR"

    @property
    def published(self) -> str:
        symbol = {"EUR": "€", "GBP": "£", "USD": "$"}[self.currency]
        if self.low == self.high:
            return f"{symbol}{self.low:,.0f}"
        return f"{symbol}{self.low:,.0f}–{symbol}{self.high:,.0f}"


ANCHORS: tuple[Anchor, ...] = (
    Anchor("ari_production", "ARI-0001 production cost (Hospital Clínic)", Decimal(50_000), Decimal(60_000), "EUR",
           "production of the product in the hospital", "DOMAIN.md, 'Cost': ARI-0001 production about €50–60k"),
    Anchor("dkfz", "DKFZ full cost at 18 patients a year", Decimal(60_000), Decimal(60_000), "EUR",
           "full cost of one product, an upper bound ('below €60,000')",
           "Ran et al., Int J Cancer 2020"),
    Anchor("umcg", "UMCG in-house CAR-T", Decimal(80_000), Decimal(80_000), "EUR", "hospital's in-house product",
           "DOMAIN.md, 'Cost'"),
    Anchor("ari_price", "ARI-0001 hospital price", Decimal(89_000), Decimal(89_000), "EUR",
           "price per patient charged by the hospital", "DOMAIN.md, 'Cost' (about a third of list prices)"),
    Anchor("kymriah_uk", "Kymriah list price (UK)", Decimal(282_000), Decimal(282_000), "GBP",
           "commercial list price of the product", "DOMAIN.md, 'Cost'"),
    Anchor("yescarta_uk", "Yescarta list price (UK)", Decimal(300_000), Decimal(300_000), "GBP",
           "commercial list price of the product (about)", "DOMAIN.md, 'Cost'"),
)


@dataclass(frozen=True)
class Comparison:
    anchor: Anchor
    ratio_low: Decimal  # anchor (low end, €) / our figure
    ratio_high: Decimal


def compare(per_product: Decimal | None) -> list[Comparison]:
    """Each anchor against ``per_product`` (our cost per released product, €): how many times ours it is.
    Empty when there is no figure of ours (no product released in the period)."""
    if per_product is None or per_product <= 0:
        return []
    return [Comparison(a, (a.eur_low / per_product).quantize(Decimal("0.1")),
                       (a.eur_high / per_product).quantize(Decimal("0.1"))) for a in ANCHORS]
