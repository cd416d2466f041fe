"""Coupons: an amount (minor units, one currency) or a percent off, a validity window, a usage limit taken
atomically at checkout, a minimum subtotal; owned by a seller (applies to that seller's order) or
platform-wide (seller_id NULL, admins; applies to the whole checkout, split across its orders).

One coupon per checkout. When a code matches several coupons (a platform coupon and a seller's, or two
sellers using the same code), the one giving the largest discount is used."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import asyncpg

from db import audit
from db import coupons as coupons_db
from db import users as users_db
from live.auth import policy
from live.auth.principal import Principal
from live.errors import DomainError, not_found


@dataclass(frozen=True)
class Discount:
    coupon_id: str
    code: str
    by_seller: dict[str, int]  # seller_id -> discount in minor units


def invalid_coupon(message: str) -> DomainError:
    return DomainError("invalid_coupon", message)


def percent_of(amount: int, percent: int) -> int:
    return amount * percent // 100  # rounds down: never more than the advertised percent


def split(amount: int, weights: dict[str, int]) -> dict[str, int]:
    """Split amount across keys in proportion to weights (largest remainder, so the parts sum exactly)."""
    total = sum(weights.values())
    if total <= 0:
        return {k: 0 for k in weights}
    parts = {k: amount * w // total for k, w in weights.items()}
    rest = amount - sum(parts.values())
    for k in sorted(weights, key=lambda k: (-(amount * weights[k] % total), k))[:rest]:
        parts[k] += 1
    return parts


def _why_not(c, subtotal: int, currency: str, now: datetime) -> str | None:
    if not c["active"]:
        return "this coupon is not active"
    if c["starts_at"] is not None and c["starts_at"] > now:
        return "this coupon is not valid yet"
    if c["ends_at"] is not None and c["ends_at"] <= now:
        return "this coupon has expired"
    if c["kind"] == "amount" and c["currency"] != currency:
        return f"this coupon is in {c['currency']}, your cart in {currency}"
    if subtotal < c["min_subtotal_minor"]:
        return f"this coupon needs a subtotal of at least {c['min_subtotal_minor']} {currency} minor units"
    if c["usage_limit"] is not None and c["used_count"] >= c["usage_limit"]:
        return "this coupon has been used up"
    return None


def _discounts(c, subtotals: dict[str, int]) -> dict[str, int]:
    if c["seller_id"] is not None:
        sub = subtotals[c["seller_id"]]
        off = percent_of(sub, c["value"]) if c["kind"] == "percent" else min(c["value"], sub)
        return {c["seller_id"]: off}
    if c["kind"] == "percent":
        return {s: percent_of(v, c["value"]) for s, v in subtotals.items()}
    return split(min(c["value"], sum(subtotals.values())), subtotals)


async def take(conn: asyncpg.Connection, code: str, subtotals: dict[str, int], currency: str) -> Discount:
    """Validate the code for this checkout (subtotal per seller) and take one use of it atomically."""
    candidates = await coupons_db.coupons_by_code(conn, code, list(subtotals))
    if not candidates:
        raise invalid_coupon("unknown coupon code")
    now = datetime.now(timezone.utc)
    best, best_off, reason = None, -1, None
    for c in candidates:
        relevant = subtotals[c["seller_id"]] if c["seller_id"] is not None else sum(subtotals.values())
        why = _why_not(c, relevant, currency, now)
        if why is not None:
            reason = reason or why
            continue
        off = _discounts(c, subtotals)
        if sum(off.values()) > best_off:
            best, best_off = (c, off), sum(off.values())
    if best is None:
        if reason == "this coupon has been used up":
            raise DomainError("coupon_exhausted", reason)
        raise invalid_coupon(reason or "this coupon does not apply")
    coupon, off = best
    if not await coupons_db.take_coupon(conn, coupon["id"]):
        raise DomainError("coupon_exhausted", "this coupon has been used up")
    return Discount(coupon["id"], coupon["code"], off)


def coupon_out(row) -> dict:
    return dict(row)


def _audited(row) -> dict:
    """What the audit log keeps of a coupon (the use count is not a seller's change)."""
    return {k: v for k, v in dict(row).items() if k not in ("used_count", "created_at")}


class CouponService:
    def __init__(self, db):
        self.db = db

    async def _seller(self, conn, principal: Principal) -> str | None:
        seller = await users_db.seller_for_user(conn, principal.user_id)
        if principal.is_admin:
            return seller["id"] if seller else None
        return policy.has_shop(seller)["id"]

    async def _owner(self, conn, principal: Principal, platform: bool, refused: str) -> str | None:
        """Whose coupons: the caller's shop, or (platform, admins only) None for the platform's."""
        if not platform:
            return await self._seller(conn, principal)
        policy.admin(principal, refused)
        return None

    async def create(self, principal: Principal, fields: dict) -> dict:
        platform = fields.pop("platform", False)
        async with self.db.tx(principal) as conn:
            seller_id = await self._owner(conn, principal, platform, "only admins create platform-wide coupons")
            if seller_id is None and not platform:
                raise DomainError("invalid", "admins without a shop create platform coupons (platform: true)")
            try:
                async with conn.transaction():
                    row = await coupons_db.insert_coupon(conn, seller_id, fields)
            except asyncpg.UniqueViolationError:
                raise DomainError("conflict", "you already have a coupon with this code") from None
            except asyncpg.CheckViolationError:
                raise DomainError("validation_failed", "inconsistent coupon (percent over 100, amount without "
                                  "currency, or starts_at after ends_at)") from None
            await audit.record(conn, principal.user_id, "coupon.create", "coupon", row["id"],
                               after=_audited(row))
        return coupon_out(row)

    async def update(self, principal: Principal, coupon_id: str, fields: dict) -> dict:
        async with self.db.tx(principal) as conn:
            row = await coupons_db.coupon(conn, coupon_id)
            if row is None:
                raise not_found("coupon")
            mine = None if principal.is_admin else await self._seller(conn, principal)
            policy.owner_or_admin(principal, row["seller_id"], "not your coupon", shop=mine)
            try:
                async with conn.transaction():
                    updated = await coupons_db.update_coupon(conn, coupon_id, fields)
            except asyncpg.CheckViolationError:
                raise DomainError("validation_failed", "inconsistent coupon (usage limit below uses, or "
                                  "starts_at after ends_at)") from None
            before, after = audit.changed(_audited(row), _audited(updated))
            if after:
                await audit.record(conn, principal.user_id, "coupon.update", "coupon", coupon_id, before=before,
                                   after=after)
        return coupon_out(updated)

    async def mine(self, principal: Principal, platform: bool) -> dict:
        async with self.db.tx(principal) as conn:
            seller_id = await self._owner(conn, principal, platform, "only admins see platform coupons")
            rows = await coupons_db.seller_coupons(conn, seller_id)
        return {"items": [coupon_out(r) for r in rows]}
