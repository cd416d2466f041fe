"""`POST /api/v1/me/addresses/{id}/default`: one of the buyer's saved addresses becomes the default (the old one is
cleared, the list puts it first); another user's or an unknown address is a 404 that changes nothing."""
from __future__ import annotations

import uuid

ADDRESS = {"name": "Bo Buyer", "line1": "5 Broadway", "city": "New York", "state": "NY", "postal_code": "10001",
           "country": "US"}


async def test_make_a_saved_address_the_default(shop):
    buyer, other = await shop.user(), await shop.user()
    home = await shop.call("POST", "/me/addresses", buyer, json={**ADDRESS, "default": True}, expect=201)
    work = await shop.call("POST", "/me/addresses", buyer, json={**ADDRESS, "line1": "9 Office Rd"}, expect=201)

    async def defaults(user) -> list[tuple[str, bool]]:
        return [(a["id"], a["is_default"]) for a in (await shop.call("GET", "/me/addresses", user))["items"]]

    assert await defaults(buyer) == [(home["id"], True), (work["id"], False)]
    out = await shop.call("POST", f"/me/addresses/{work['id']}/default", buyer, expect=200)
    assert (out["id"], out["is_default"], out["line1"]) == (work["id"], True, "9 Office Rd")
    assert await defaults(buyer) == [(work["id"], True), (home["id"], False)]
    await shop.call("POST", f"/me/addresses/{work['id']}/default", buyer, expect=200)  # again: no change
    assert await defaults(buyer) == [(work["id"], True), (home["id"], False)]

    # not theirs, unknown, not an id: nothing changes
    await shop.call("POST", f"/me/addresses/{home['id']}/default", other, expect=404)
    await shop.call("POST", f"/me/addresses/{uuid.uuid4()}/default", buyer, expect=404)
    await shop.call("POST", "/me/addresses/nope/default", buyer, expect=404)
    assert await defaults(buyer) == [(work["id"], True), (home["id"], False)]
    await shop.call("POST", f"/me/addresses/{home['id']}/default", expect=401)
