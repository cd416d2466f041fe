"""A buyer's saved shipping addresses (checkout takes one by id): listed default first, added (validated first by
live/commerce/shipping/addresses.py `verified`), made the default, deleted."""
from __future__ import annotations

from db import Database
from db import addresses as addresses_db
from live.auth.principal import Principal
from live.commerce.shipping.addresses import verified
from live.commerce.shipping.carriers.base import Carrier
from live.errors import not_found


class AddressBook:
    def __init__(self, db: Database, carrier: Carrier):
        self.db = db
        self.carrier = carrier

    async def mine(self, principal: Principal) -> list[dict]:
        async with self.db.tx(principal) as conn:
            return await addresses_db.list_for(conn, principal.user_id)

    async def add(self, principal: Principal, fields: dict, make_default: bool) -> dict:
        await verified(self.carrier, fields)
        async with self.db.tx(principal) as conn:
            return await addresses_db.create(conn, principal.user_id, fields, make_default)

    async def make_default(self, principal: Principal, address_id: str) -> dict:
        async with self.db.tx(principal) as conn:
            row = await addresses_db.make_default(conn, principal.user_id, address_id)
            if row is None:  # raised inside: the transaction rolls back and the old default stays
                raise not_found("address")
        return row

    async def delete(self, principal: Principal, address_id: str) -> None:
        async with self.db.tx(principal) as conn:
            if not await addresses_db.delete(conn, principal.user_id, address_id):
                raise not_found("address")
