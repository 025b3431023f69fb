"""What a cost model may say (COST-BATCH): the shape of ``CostModel.content`` and its bounds.

Pure: no Django, so the rule is the same in the service, a test and a script. :func:`content_checked`
takes what a person gave (a mapping, already decoded within ``core.bounds``) and returns it
normalized — every price a string of a finite decimal number, at least 0, inside the bound of its
kind, with at most 4 decimals — or raises :class:`ContentRefused` naming the path of the first
value refused (``labour.hourly_rates.operator``). Unknown keys are refused by name, so that a typing
slip (``overhed``) never reads as "no overhead".

The shape (every section optional except ``currency``; a figure the model does not price is shown as
unpriced on the batch's cost, never as zero)::

    {"currency": "EUR",
     "labour": {"hourly_rates": {"operator": 55, ...},              # € per hour, by role
                "site_hourly_rates": {"LIS": {"operator": 38}},     # where a site's rate differs
                "verification_minutes": 10},                        # a second person's check of a step
     "materials": {"TS520": 950, ...},       # € per unit of the master file's material (by code)
     "material_lots": {"TS520": {"L24-0113": 980}},  # € per unit of one lot (its purchase price), where it
                                                     # differs from the material's price
     "qc_tests": {"viability": 120, ...},    # € per QC result (by the specification's attribute id)
     "facility": {"hourly": 40, "site_hourly": {"MAD": 45}},   # cleanroom € per hour of the batch
     "equipment": {"hourly": {"clinimacs_prodigy": 18}},       # depreciation € per hour, by device type
     "review": {"qa_hours": 2, "qp_hours": 1},                 # QA review and QP certification per batch
     "logistics": {"per_shipment": 650,                        # € per shipment of the order
                   "per_hour": 40},                            # € per hour of transport (planning only)
     "overhead": {"percent": 15},                              # of every other line
     "clinical": {"apheresis": 4200, "lymphodepletion": 2600,  # € per apheresis, per conditioning,
                  "infusion": 7500,                            # per infusion (with the stay),
                  "visit": {"in_person": 380, "phone": 60, "questionnaire": 25}},  # per follow-up visit done
     # For planning's business case (docs/business-case.md); not used to price a batch's records:
     "capital": {"unit_price": FIGURE,          # € of a prefabricated GMP unit (cleanroom module)
                 "devices_per_unit": FIGURE,    # closed manufacturing devices in one unit (whole number)
                 "device_price": FIGURE,        # € of one device
                 "installation": FIGURE,        # € to install and qualify one unit
                 "depreciation_years": FIGURE}, # 1 to 50 years, straight line
     "fixed": {"staff": FIGURE, "rent": FIGURE, "maintenance": FIGURE, "qa_share": FIGURE,
               "other": FIGURE},                # € a year of one site, whatever its volume
     "centralized_price": FIGURE}               # € per patient of the centralized product (break-even)

A FIGURE is a number (an **estimate**) or ``{"value": 1200000, "source": "Cavallo 2024, ..."}`` (a
published figure with where it is published, at most 300 characters) or ``{"value": 9, "estimate": true}``;
it is normalized to ``{"value": "1200000", "source": "..."}`` or ``{"value": "9", "estimate": true}``.
Contents without these sections stay valid.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from pocare.core import bounds

CURRENCY = "EUR"
#: Upper bounds of each kind of figure (a typing slip beyond them is refused, not priced).
MAX_HOURLY = Decimal(1_000)  # € per hour of a person
MAX_MATERIAL = Decimal(1_000_000)  # € per unit of a material
MAX_QC_TEST = Decimal(100_000)  # € per QC result
MAX_FACILITY_HOURLY = Decimal(10_000)  # € per hour of cleanroom
MAX_EQUIPMENT_HOURLY = Decimal(10_000)  # € per hour of a device
MAX_REVIEW_HOURS = Decimal(200)  # hours of QA or QP per batch
MAX_VERIFICATION_MINUTES = Decimal(480)
MAX_SHIPMENT = Decimal(100_000)  # € per shipment
MAX_PERCENT = Decimal(100)
MAX_CLINICAL = Decimal(500_000)  # € per clinical event of a patient's episode (an apheresis, an infusion, a visit)
#: How a follow-up visit may be done (patients.models.VisitMode).
VISIT_MODES = ("in_person", "phone", "questionnaire")
MAX_TRANSPORT_HOURLY = Decimal(10_000)  # € per hour of transport
MAX_CAPITAL = Decimal(100_000_000)  # € of a prefabricated unit, a device, an installation
MAX_ANNUAL = Decimal(100_000_000)  # € a year of one site's fixed cost
MAX_DEVICES = Decimal(100)  # devices in one unit
MAX_YEARS = Decimal(50)  # depreciation
MAX_PATIENT_PRICE = Decimal(10_000_000)  # € per patient of a centralized product
MAX_SOURCE_CHARS = 300
CAPITAL_KEYS = ("unit_price", "devices_per_unit", "device_price", "installation", "depreciation_years")
FIXED_KEYS = ("staff", "rent", "maintenance", "qa_share", "other")
#: At most this many entries in one map (prices of materials, rates of sites, ...).
MAX_ENTRIES = 2_000
#: At most this many lot prices in all (``material_lots``), and a lot number's length (``MaterialLot``).
MAX_LOT_PRICES = 20_000
MAX_LOT_NUMBER_CHARS = 60
PLACES = 4
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
_MAX_NUMBER_CHARS = 40


class ContentRefused(ValueError):
    """A value of the content refused: ``path`` names where (``materials.TS520``), ``message`` why."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path or "content"
        self.message = message


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def amount_checked(value: Any, path: str, maximum: Decimal) -> str:
    """``value`` as a finite decimal from 0 to ``maximum`` with at most :data:`PLACES` decimals, as text."""
    allowed = f"a number from 0 to {maximum:,} with at most {PLACES} decimals"
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        kind = "an object" if isinstance(value, Mapping) else ("a list" if isinstance(value, list | tuple) else
                                                               type(value).__name__)
        raise ContentRefused(path, f"must be {allowed}, not {kind}")
    text = str(value).strip()
    if len(text) > _MAX_NUMBER_CHARS:
        raise ContentRefused(path, f"must be {allowed}; it has {len(text)} characters")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ContentRefused(path, f"must be {allowed}; {text[:24]!r} is not a number") from None
    if not number.is_finite():
        raise ContentRefused(path, f"must be {allowed}; {text!r} is not finite")
    if number < 0 or number > maximum:
        raise ContentRefused(path, f"must be {allowed}; {text} is outside")
    if number != number.quantize(Decimal(1).scaleb(-PLACES)):
        raise ContentRefused(path, f"must be {allowed}; {text} has more decimals")
    normal = number.quantize(Decimal(1).scaleb(-PLACES)).normalize()
    return f"{normal:f}"


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ContentRefused(path, "must be an object of names and values")
    if len(value) > MAX_ENTRIES:
        raise ContentRefused(path, f"has {len(value)} entries; at most {MAX_ENTRIES}")
    return value


def _section(value: Any, path: str, known: Collection[str]) -> Mapping[str, Any]:
    found = _mapping(value, path)
    for key in found:
        if key not in known:
            raise ContentRefused(_join(path, str(key)), f"is not a key of the cost model here; the keys are "
                                                         f"{', '.join(sorted(known))}")
    return found


def _key(key: Any, path: str, allowed: Collection[str] | None) -> str:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ContentRefused(_join(path, str(key)[:64]), "is not a code: letters, digits, '.', '_' or '-', "
                                                        "at most 64")
    if allowed is not None and key not in allowed:
        raise ContentRefused(_join(path, key), f"is not one of {', '.join(sorted(allowed))}")
    return key


def _prices(value: Any, path: str, maximum: Decimal, allowed: Collection[str] | None = None) -> dict[str, str]:
    return {_key(k, path, allowed): amount_checked(v, _join(path, k), maximum)
            for k, v in _mapping(value, path).items()}


def _lot_prices(value: Any, path: str) -> dict[str, dict[str, str]]:
    """``{material code: {lot number: price}}``: a lot number is the supplier's text as received (1 to
    :data:`MAX_LOT_NUMBER_CHARS` printable characters, no surrounding spaces)."""
    out: dict[str, dict[str, str]] = {}
    count = 0
    for code, lots in _mapping(value, path).items():
        where = _join(path, _key(code, path, None))
        out[code] = {}
        for lot, price in _mapping(lots, where).items():
            lot_path = _join(where, str(lot)[:MAX_LOT_NUMBER_CHARS])
            if (not isinstance(lot, str) or not lot or lot != lot.strip() or len(lot) > MAX_LOT_NUMBER_CHARS
                    or bounds.has_control(lot)):
                raise ContentRefused(lot_path, f"is not a lot number: 1 to {MAX_LOT_NUMBER_CHARS} printable "
                                               "characters, without spaces around them")
            count += 1
            if count > MAX_LOT_PRICES:
                raise ContentRefused(path, f"has more than {MAX_LOT_PRICES:,} lot prices")
            out[code][lot] = amount_checked(price, lot_path, MAX_MATERIAL)
    return out


def _source(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise ContentRefused(path, f"must be text saying where the figure is published, at most {MAX_SOURCE_CHARS} "
                                   "characters")
    text = value.strip()
    if not text or len(text) > MAX_SOURCE_CHARS:
        raise ContentRefused(path, f"must be text of 1 to {MAX_SOURCE_CHARS} characters; it has {len(text)}")
    if bounds.has_control(text):
        raise ContentRefused(path, "must be one line of printable text (no control characters)")
    return text


def figure_checked(value: Any, path: str, maximum: Decimal, *, minimum: Decimal = Decimal(0),
                   whole: bool = False) -> dict[str, Any]:
    """A planning figure: a number (an estimate), ``{"value", "source"}`` (published) or ``{"value",
    "estimate": true}``; normalized to ``{"value": text, "source": text}`` or ``{"value": text, "estimate": True}``."""
    if isinstance(value, Mapping):
        found = _section(value, path, ("value", "source", "estimate"))
        if "value" not in found:
            raise ContentRefused(_join(path, "value"), "is missing: the figure's number")
        number = amount_checked(found["value"], _join(path, "value"), maximum)
        where = _join(path, "value")
        if "source" in found and "estimate" in found:
            raise ContentRefused(path, "is either published (a source) or an estimate, not both")
        if "estimate" in found and found["estimate"] is not True:
            raise ContentRefused(_join(path, "estimate"), "must be true (or give a source instead)")
        out: dict[str, Any] = ({"value": number, "source": _source(found["source"], _join(path, "source"))}
                               if "source" in found else {"value": number, "estimate": True})
    else:
        number = amount_checked(value, path, maximum)
        where = path
        out = {"value": number, "estimate": True}
    if Decimal(number) < minimum or (whole and Decimal(number) != Decimal(number).to_integral_value()):
        kind = "a whole number" if whole else "a number"
        raise ContentRefused(where, f"must be {kind} from {minimum:,} to {maximum:,}; {number} is outside")
    return out


def _figures(value: Any, path: str, limits: Mapping[str, tuple[Decimal, Decimal, bool]]) -> dict[str, Any]:
    return {key: figure_checked(found, _join(path, key), limits[key][1], minimum=limits[key][0],
                                whole=limits[key][2])
            for key, found in _section(value, path, tuple(limits)).items()}


#: (minimum, maximum, whole) of each figure of ``capital`` and ``fixed``.
CAPITAL_LIMITS: dict[str, tuple[Decimal, Decimal, bool]] = {
    "unit_price": (Decimal(0), MAX_CAPITAL, False), "devices_per_unit": (Decimal(1), MAX_DEVICES, True),
    "device_price": (Decimal(0), MAX_CAPITAL, False), "installation": (Decimal(0), MAX_CAPITAL, False),
    "depreciation_years": (Decimal(1), MAX_YEARS, False)}
FIXED_LIMITS: dict[str, tuple[Decimal, Decimal, bool]] = {key: (Decimal(0), MAX_ANNUAL, False) for key in FIXED_KEYS}


def content_checked(content: Any, *, roles: Collection[str], device_types: Collection[str]) -> dict[str, Any]:
    """``content`` normalized, or :class:`ContentRefused` naming the first path refused. ``roles`` and
    ``device_types`` are the names a rate may be given for (``accounts.roles.Role``,
    ``network.models.DeviceType``)."""
    top = _section(content, "", ("currency", "labour", "materials", "material_lots", "qc_tests", "facility",
                                 "equipment", "review", "logistics", "overhead", "clinical", "capital", "fixed",
                                 "centralized_price"))
    if top.get("currency") != CURRENCY:
        raise ContentRefused("currency", f'must be "{CURRENCY}"')
    out: dict[str, Any] = {"currency": CURRENCY}
    if "labour" in top:
        labour = _section(top["labour"], "labour", ("hourly_rates", "site_hourly_rates", "verification_minutes"))
        out["labour"] = {}
        if "hourly_rates" in labour:
            out["labour"]["hourly_rates"] = _prices(labour["hourly_rates"], "labour.hourly_rates", MAX_HOURLY, roles)
        if "site_hourly_rates" in labour:
            path = "labour.site_hourly_rates"
            out["labour"]["site_hourly_rates"] = {
                _key(site, path, None): _prices(rates, _join(path, site), MAX_HOURLY, roles)
                for site, rates in _mapping(labour["site_hourly_rates"], path).items()}
        if "verification_minutes" in labour:
            out["labour"]["verification_minutes"] = amount_checked(
                labour["verification_minutes"], "labour.verification_minutes", MAX_VERIFICATION_MINUTES)
    if "materials" in top:
        out["materials"] = _prices(top["materials"], "materials", MAX_MATERIAL)
    if "material_lots" in top:
        out["material_lots"] = _lot_prices(top["material_lots"], "material_lots")
    if "qc_tests" in top:
        out["qc_tests"] = _prices(top["qc_tests"], "qc_tests", MAX_QC_TEST)
    if "facility" in top:
        facility = _section(top["facility"], "facility", ("hourly", "site_hourly"))
        out["facility"] = {}
        if "hourly" in facility:
            out["facility"]["hourly"] = amount_checked(facility["hourly"], "facility.hourly", MAX_FACILITY_HOURLY)
        if "site_hourly" in facility:
            out["facility"]["site_hourly"] = _prices(facility["site_hourly"], "facility.site_hourly",
                                                     MAX_FACILITY_HOURLY)
    if "equipment" in top:
        equipment = _section(top["equipment"], "equipment", ("hourly",))
        out["equipment"] = {}
        if "hourly" in equipment:
            out["equipment"]["hourly"] = _prices(equipment["hourly"], "equipment.hourly", MAX_EQUIPMENT_HOURLY,
                                                 device_types)
    if "review" in top:
        review = _section(top["review"], "review", ("qa_hours", "qp_hours"))
        out["review"] = {key: amount_checked(value, f"review.{key}", MAX_REVIEW_HOURS) for key, value in review.items()}
    if "logistics" in top:
        logistics = _section(top["logistics"], "logistics", ("per_shipment", "per_hour"))
        out["logistics"] = {key: amount_checked(value, f"logistics.{key}",
                                                MAX_SHIPMENT if key == "per_shipment" else MAX_TRANSPORT_HOURLY)
                            for key, value in logistics.items()}
    if "overhead" in top:
        overhead = _section(top["overhead"], "overhead", ("percent",))
        out["overhead"] = {key: amount_checked(value, f"overhead.{key}", MAX_PERCENT)
                           for key, value in overhead.items()}
    if "clinical" in top:
        clinical = _section(top["clinical"], "clinical", ("apheresis", "lymphodepletion", "infusion", "visit"))
        out["clinical"] = {key: amount_checked(value, f"clinical.{key}", MAX_CLINICAL)
                           for key, value in clinical.items() if key != "visit"}
        if "visit" in clinical:
            out["clinical"]["visit"] = _prices(clinical["visit"], "clinical.visit", MAX_CLINICAL, VISIT_MODES)
    if "capital" in top:
        out["capital"] = _figures(top["capital"], "capital", CAPITAL_LIMITS)
    if "fixed" in top:
        out["fixed"] = _figures(top["fixed"], "fixed", FIXED_LIMITS)
    if "centralized_price" in top:
        out["centralized_price"] = figure_checked(top["centralized_price"], "centralized_price", MAX_PATIENT_PRICE)
    return out
