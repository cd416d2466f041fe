"""Cart changes of one variant that wait together go to the database together (commerce_cart_changes): in
order, never overselling, a replay inside a batch answered `duplicate`, a quantity change giving units back to
the adds after it, and one bad change failing alone."""
from __future__ import annotations

import asyncio
import uuid

import pytest

from db import inventory as inventory_db
from db.inventory import CartChange
from live.auth.principal import Principal
from tests.commerce.harness import assert_sold_exactly, crowd


async def _changes(shop, vid: str, changes: list[CartChange]) -> list[dict]:
    async with shop.services.db.pool.acquire() as conn:
        return await inventory_db.cart_changes(conn, vid, changes, inventory_db.CartLimits(600, 99, 99, 3600))


async def test_one_statement_applies_changes_in_order(shop):
    seller = await shop.seller()
    vid = (await shop.product(seller, stock=3))["variants"][0]["id"]
    buyers = await crowd(shop, 8)
    changes = [CartChange(b.id, "add", 1, None, f"k{i}") for i, b in enumerate(buyers)]
    changes.insert(2, CartChange(buyers[0].id, "add", 1, None, "k0"))  # a replay of the first, in the same batch
    results = await _changes(shop, vid, changes)
    assert [r["status"] for r in results] == ["ok", "ok", "duplicate", "ok"] + ["out_of_stock"] * 5
    assert [r["available"] for r in results if r["status"] == "ok"] == [2, 1, 0]
    versions = [r["version"] for r in results if r["status"] == "ok"]
    assert versions == sorted(versions) and len(set(versions)) == 3
    assert all(r["available"] == 0 for r in results if r["status"] == "out_of_stock")
    assert results[2]["cart_id"] == results[0]["cart_id"] is not None
    assert all(r["cart_id"] is None for r in results if r["status"] == "out_of_stock")
    await assert_sold_exactly(shop, vid, 3, 3)
    # replaying the whole batch changes nothing: the ok ones are duplicates now
    again = await _changes(shop, vid, changes)
    assert [r["status"] for r in again] == ["duplicate", "duplicate", "duplicate", "duplicate"] + ["out_of_stock"] * 5
    await assert_sold_exactly(shop, vid, 3, 3)


async def test_a_quantity_change_in_the_batch_gives_units_to_the_adds_after_it(shop):
    seller = await shop.seller()
    vid = (await shop.product(seller, stock=1))["variants"][0]["id"]
    holder, early, late = await crowd(shop, 3)
    assert [r["status"] for r in await _changes(shop, vid, [CartChange(holder.id, "add", 1)])] == ["ok"]
    results = await _changes(shop, vid, [CartChange(early.id, "add", 1), CartChange(holder.id, "set", 0),
                                         CartChange(late.id, "add", 1)])
    assert [r["status"] for r in results] == ["out_of_stock", "ok", "ok"]
    assert [r["available"] for r in results] == [0, 1, 0]
    await assert_sold_exactly(shop, vid, 1, 1, reservations=2)


async def test_bad_changes_are_refused_whole(shop):
    seller = await shop.seller()
    vid = (await shop.product(seller, stock=5))["variants"][0]["id"]
    buyer = (await crowd(shop, 1))[0]
    with pytest.raises(Exception, match="bad cart change"):
        await _changes(shop, vid, [CartChange(buyer.id, "add", 1), CartChange(buyer.id, "add", 0)])
    assert await shop.counters(vid) == {"on_hand": 5, "reserved": 0, "sold": 0}
    missing = await _changes(shop, str(uuid.uuid4()), [CartChange(buyer.id, "add", 1)])
    assert [r["status"] for r in missing] == ["not_found"]
    assert await _changes(shop, vid, []) == []


async def test_waiting_adds_go_together_and_never_oversell(shop, monkeypatch):
    seller = await shop.seller()
    vid = (await shop.product(seller, stock=20))["variants"][0]["id"]
    buyers = await crowd(shop, 150)
    sizes: list[int] = []
    real = inventory_db.cart_changes

    async def counted(conn, variant_id, changes, *args):
        sizes.append(len(changes))
        return await real(conn, variant_id, changes, *args)

    monkeypatch.setattr(inventory_db, "cart_changes", counted)
    cart = shop.services.commerce.cart
    cart.board.forget()

    async def add(b):
        try:
            await cart.add(Principal(b.id, "customer"), vid, 1, key=f"go-{b.id}")
            return "ok"
        except Exception as exc:  # DomainError
            return getattr(exc, "code", repr(exc))

    results = await asyncio.gather(*[add(b) for b in buyers])
    assert results.count("ok") == 20 and results.count("out_of_stock") == 130
    assert sum(sizes) <= 150 and max(sizes) > 1, sizes  # together, and the refusals after the sale from memory
    assert len(sizes) < 10, sizes
    await assert_sold_exactly(shop, vid, 20, 20)


async def test_one_bad_change_fails_alone(shop):
    seller = await shop.seller()
    vid = (await shop.product(seller, stock=10))["variants"][0]["id"]
    buyers = await crowd(shop, 6)
    ghost = Principal(str(uuid.uuid4()), "customer")  # a token for a user who no longer exists
    cart = shop.services.commerce.cart

    async def add(principal):
        try:
            return (await cart.add(principal, vid, 1))["cart"]["item_count"]
        except Exception as exc:
            return type(exc).__name__

    results = await asyncio.gather(*[add(Principal(b.id, "customer")) for b in buyers[:3]], add(ghost),
                                   *[add(Principal(b.id, "customer")) for b in buyers[3:]])
    assert results[:3] == [1, 1, 1] and results[4:] == [1, 1, 1]
    assert results[3] == "UnknownUser"  # a clean `unauthorized`, not a database error
    await assert_sold_exactly(shop, vid, 10, 6)
