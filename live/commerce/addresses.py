"""A buyer's saved shipping addresses (checkout takes one by id): listed default first, added (validated first),
deleted; and `verified`, the one address check of saved addresses, checkout's inline address and sellers'
ship-from address (the required-field and postal-code rules, then the carrier's own validation)."""
from __future__ import annotations

from db import Database
from db import addresses as addresses_db
from live.auth.principal import Principal
from live.commerce.shipping.addresses import check_address
from live.commerce.shipping.carriers.base import Address, Carrier, CarrierError
from live.errors import DomainError, not_found


async def verified(carrier: Carrier, fields: dict, prefix: str = "") -> None:
    """Refuse an address that fails the rules or the carrier's validation: 422 `validation_failed` with one
    {field, message} per problem (`prefix` names where it sits in the body, e.g. "address."). Runs outside any
    transaction (the carrier may be a remote call). A carrier that cannot be reached is 502 `carrier_error`."""
    problems = check_address(fields)
    if not problems:
        try:
            problems = await carrier.validate_address(Address.of(fields))
        except CarrierError as exc:
            if not exc.fields:
                raise DomainError("carrier_error", f"the carrier could not check the address: {exc.message}") \
                    from None
            problems = exc.fields
    if problems:
        raise DomainError("validation_failed", "the address is not valid",
                          details=[{"field": prefix + (p.get("field") or "address"), "message": p["message"]}
                                   for p in problems])


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

    async def delete(self, principal: Principal, address_id: str) -> None:
        async with self.db.tx(principal) as conn:
            if not await addresses_db.delete(conn, principal.user_id, address_id):
                raise not_found("address")
