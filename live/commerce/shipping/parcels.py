"""The parcel of a seller's part of a cart: one box holding every unit.

Each unit's weight and dimensions come from its variant, else its product, else the seller's parcel defaults
(each of the four values on its own). The parcel weighs the sum of the units' weights; its box is as long and as
wide as the longest and widest unit, and as high as the units stacked (the sum of their heights, one per unit).
A parcel over MAX_WEIGHT_G or with a side over MAX_SIDE_CM is refused (`validation_failed` naming the cart): the
buyer splits the order; nothing is split silently. docs/shipping.md, Rates."""
from __future__ import annotations

import math
from typing import Iterable, Mapping

from live.commerce.shipping.carriers.base import Parcel
from live.errors import DomainError

MAX_WEIGHT_G = 70_000  # what the carriers take in one parcel (and the bound of the weight columns)
MAX_SIDE_CM = 300.0    # the bound of the dimension columns; a stacked box higher than this is refused too
_DIMS = ("weight_g", "length_cm", "width_cm", "height_cm")


def unit_dims(dims: Mapping | None, defaults: Mapping) -> dict:
    """One unit's weight and dimensions: variant (`v_` keys) > product (`p_` keys) > the seller's defaults."""
    dims = dims or {}
    out = {}
    for name in _DIMS:
        value = dims.get("v_" + name)
        if value is None:
            value = dims.get("p_" + name)
        if value is None:
            value = defaults["default_" + name]
        out[name] = value
    return out


def parcel_for(lines: Iterable[Mapping], dims: Mapping[str, Mapping], defaults: Mapping,
               seller_id: str | None = None) -> Parcel:
    """The parcel of `lines` (variant_id, quantity), `dims` from db.shipping.dimensions, `defaults` the seller's
    settings."""
    weight, length, width, height = 0, 0.0, 0.0, 0.0
    for ln in lines:
        unit = unit_dims(dims.get(ln["variant_id"]), defaults)
        qty = int(ln["quantity"])
        weight += int(unit["weight_g"]) * qty
        length = max(length, float(unit["length_cm"]))
        width = max(width, float(unit["width_cm"]))
        height += float(unit["height_cm"]) * qty
    problems = []
    if weight > MAX_WEIGHT_G:
        problems.append(f"weighs {weight} g, over the {MAX_WEIGHT_G} g one parcel may weigh")
    if max(length, width, height) > MAX_SIDE_CM:
        problems.append(f"measures {length:g} x {width:g} x {height:g} cm, a side over {MAX_SIDE_CM:g} cm")
    if problems:
        whose = f" for seller {seller_id}" if seller_id else ""
        raise DomainError("validation_failed", f"the cart's parcel{whose} is too large to ship: split the order",
                          details=[{"field": "cart", "message": f"the parcel{whose} {p}", "seller_id": seller_id}
                                   for p in problems])
    return Parcel(weight_g=max(weight, 1), length_cm=_cm(length), width_cm=_cm(width), height_cm=_cm(height))


def _cm(value: float) -> float:
    return max(0.1, math.ceil(value * 10 - 1e-9) / 10)  # one decimal, rounded up (never smaller than the goods)


def parcel_dict(p: Parcel) -> dict:
    return {"weight_g": p.weight_g, "length_cm": p.length_cm, "width_cm": p.width_cm, "height_cm": p.height_cm}
