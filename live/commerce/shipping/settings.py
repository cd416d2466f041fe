"""A seller's shipping settings: the ship-from address (validated through the carrier when saved), the parcel
defaults of products without their own weight and dimensions, free shipping over an order amount, the return
window and whether a label is bought by itself on payment. A seller reads and sets their own; an admin any
seller's (`seller_id`). docs/shipping.md, Seller settings."""
from __future__ import annotations

from db import Database
from db import catalog as catalog_db
from db import shipping as shipping_db
from db import users as users_db
from live.auth import policy
from live.auth.principal import Principal
from live.commerce.shipping.addresses import verified
from live.commerce.shipping.carriers.base import Carrier
from live.errors import forbidden, not_found

_OUT = ("ship_from", "default_weight_g", "default_length_cm", "default_width_cm", "default_height_cm",
        "free_shipping_over_minor", "return_window_days", "auto_purchase_label", "updated_at")


def settings_out(row: dict) -> dict:
    return {"seller_id": row["seller_id"], **{k: row[k] for k in _OUT}, "ships": row["configured"]}


class SellerShippingSettings:
    def __init__(self, db: Database, carrier: Carrier):
        self.db = db
        self.carrier = carrier

    async def _seller_id(self, conn, principal: Principal, wanted: str | None) -> str:
        """The caller's own shop; an admin may name any seller (`wanted`)."""
        if wanted is not None:
            if not principal.is_admin:
                own = await users_db.seller_for_user(conn, principal.user_id)
                if own is None or own["id"] != wanted:
                    raise forbidden("only an admin can see another seller's shipping settings")
                return wanted
            if not await catalog_db.seller_exists(conn, wanted):
                raise not_found("seller")
            return wanted
        return policy.has_shop(await users_db.seller_for_user(conn, principal.user_id))["id"]

    async def get(self, principal: Principal, seller_id: str | None = None) -> dict:
        async with self.db.tx(principal) as conn:
            sid = await self._seller_id(conn, principal, seller_id)
            return settings_out(await shipping_db.seller_settings(conn, sid))

    async def put(self, principal: Principal, fields: dict, seller_id: str | None = None) -> dict:
        """Set the given fields (those left out keep their value; `ship_from: null` clears the address, so the
        seller's orders carry no carrier shipping). The ship-from address is checked before anything is written."""
        async with self.db.tx(principal) as conn:  # who, first: a refused caller learns nothing of the address
            await self._seller_id(conn, principal, seller_id)
        if fields.get("ship_from") is not None:
            await verified(self.carrier, fields["ship_from"], "ship_from.")
        async with self.db.tx(principal) as conn:
            sid = await self._seller_id(conn, principal, seller_id)
            return settings_out(await shipping_db.save_settings(conn, sid, fields))
