"""Row-level security as the app uses it: every Database.tx runs as role live_app with the caller in app.*,
so a query without a WHERE clause still only sees the caller's rows."""
from __future__ import annotations

import asyncpg
import pytest

from db import users as users_db
from live.auth.principal import ANONYMOUS, SYSTEM, Principal


@pytest.fixture
async def world(db):
    """Two customers (A, B) with a cart, an address and an order each; two sellers with products."""
    async with db.tx(SYSTEM) as conn:
        a = await users_db.find_or_create_by_name(conn, "alice", "customer")
        b = await users_db.find_or_create_by_name(conn, "bob", "customer")
        s1_user = await users_db.find_or_create_by_name(conn, "shop-one", "seller")
        s2_user = await users_db.find_or_create_by_name(conn, "shop-two", "seller")
        s1 = await users_db.ensure_seller(conn, s1_user["id"], "Shop One", "shop-one")
        s2 = await users_db.ensure_seller(conn, s2_user["id"], "Shop Two", "shop-two")

        async def product(seller_id, title, status):
            return str(await conn.fetchval(
                "INSERT INTO products (seller_id, title, status) VALUES ($1::uuid, $2, $3) RETURNING id",
                seller_id, title, status))

        async def user_rows(user_id, seller_id, name):
            cart = await conn.fetchval("INSERT INTO carts (user_id) VALUES ($1::uuid) RETURNING id", user_id)
            address = await conn.fetchval(
                """INSERT INTO addresses (user_id, name, line1, city, country)
                   VALUES ($1::uuid, $2, '1 Main St', 'Springfield', 'US') RETURNING id""", user_id, name)
            order = await conn.fetchval(
                """INSERT INTO orders (user_id, seller_id, subtotal_minor, total_minor, currency)
                   VALUES ($1::uuid, $2::uuid, 1000, 1000, 'USD') RETURNING id""", user_id, seller_id)
            return {"cart": str(cart), "address": str(address), "order": str(order)}

        w = {
            "a": a["id"], "b": b["id"], "s1_user": s1_user["id"], "s2_user": s2_user["id"],
            "s1": s1["id"], "s2": s2["id"],
            "p1_active": await product(s1["id"], "Active one", "active"),
            "p1_draft": await product(s1["id"], "Draft one", "draft"),
            "p2_active": await product(s2["id"], "Active two", "active"),
            "p2_archived": await product(s2["id"], "Archived two", "archived"),
        }
        w["a_rows"] = await user_rows(a["id"], s1["id"], "Alice")  # A bought from seller 1
        w["b_rows"] = await user_rows(b["id"], s2["id"], "Bob")    # B bought from seller 2
    return w


def ids(rows) -> set[str]:
    return {str(r["id"]) for r in rows}


async def test_transactions_run_as_live_app_without_bypassrls(db):
    async with db.tx(Principal(None, "anon")) as conn:
        assert await conn.fetchval("SELECT current_user") == "live_app"
        assert await conn.fetchval("SELECT current_setting('is_superuser')") == "off"
    async with db.tx(SYSTEM) as conn:
        assert await conn.fetchval("SELECT current_user") == "live_app"
        role = await conn.fetchrow("SELECT rolbypassrls, rolsuper FROM pg_roles WHERE rolname = 'live_app'")
    assert role["rolbypassrls"] is False
    assert role["rolsuper"] is False


async def test_caller_is_visible_to_policies(db, world):
    async with db.tx(Principal(world["a"], "customer")) as conn:
        assert str(await conn.fetchval("SELECT app_user_id()")) == world["a"]
        assert await conn.fetchval("SELECT app_role()") == "customer"


async def test_system_sees_everything(db, world):
    async with db.tx(SYSTEM) as conn:
        assert len(await conn.fetch("SELECT id FROM carts")) == 2
        assert len(await conn.fetch("SELECT id FROM orders")) == 2
        assert len(await conn.fetch("SELECT id FROM products")) == 4


@pytest.mark.parametrize("table", ["carts", "orders", "addresses"])
async def test_customer_sees_only_own_rows_without_where(db, world, table):
    key = {"carts": "cart", "orders": "order", "addresses": "address"}[table]
    async with db.tx(Principal(world["a"], "customer")) as conn:
        rows = await conn.fetch(f"SELECT * FROM {table}")
    assert ids(rows) == {world["a_rows"][key]}
    async with db.tx(Principal(world["b"], "customer")) as conn:
        rows = await conn.fetch(f"SELECT * FROM {table}")
    assert ids(rows) == {world["b_rows"][key]}


async def test_customer_cannot_read_other_users_row_by_id(db, world):
    async with db.tx(Principal(world["a"], "customer")) as conn:
        assert await conn.fetchrow("SELECT * FROM carts WHERE id = $1::uuid", world["b_rows"]["cart"]) is None
        assert await conn.fetchrow("SELECT * FROM orders WHERE id = $1::uuid", world["b_rows"]["order"]) is None
        assert await conn.fetchrow("SELECT * FROM addresses WHERE id = $1::uuid",
                                   world["b_rows"]["address"]) is None


async def test_customer_cannot_update_or_delete_other_users_address(db, world):
    b_address = world["b_rows"]["address"]
    async with db.tx(Principal(world["a"], "customer")) as conn:
        assert await conn.execute("UPDATE addresses SET name = 'hijacked' WHERE id = $1::uuid",
                                  b_address) == "UPDATE 0"
        assert await conn.execute("UPDATE addresses SET name = 'hijacked'") == "UPDATE 1"  # only A's own
        assert await conn.execute("DELETE FROM addresses WHERE id = $1::uuid", b_address) == "DELETE 0"
    async with db.tx(SYSTEM) as conn:
        names = {str(r["id"]): r["name"] for r in await conn.fetch("SELECT id, name FROM addresses")}
    assert names == {b_address: "Bob", world["a_rows"]["address"]: "hijacked"}


async def test_customer_cannot_create_rows_for_someone_else(db, world):
    async with db.tx(Principal(world["a"], "customer")) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                """INSERT INTO addresses (user_id, name, line1, city, country)
                   VALUES ($1::uuid, 'x', 'y', 'z', 'US')""", world["b"])


async def test_seller_sees_only_orders_of_their_shop(db, world):
    async with db.tx(Principal(world["s1_user"], "seller")) as conn:
        rows = await conn.fetch("SELECT * FROM orders")
    assert ids(rows) == {world["a_rows"]["order"]}
    assert {str(r["seller_id"]) for r in rows} == {world["s1"]}
    async with db.tx(Principal(world["s2_user"], "seller")) as conn:
        rows = await conn.fetch("SELECT * FROM orders")
    assert ids(rows) == {world["b_rows"]["order"]}


async def test_seller_cannot_see_carts_or_addresses(db, world):
    async with db.tx(Principal(world["s1_user"], "seller")) as conn:
        assert await conn.fetch("SELECT * FROM carts") == []
        assert await conn.fetch("SELECT * FROM addresses") == []


async def test_seller_cannot_update_another_sellers_product(db, world):
    async with db.tx(Principal(world["s1_user"], "seller")) as conn:
        assert await conn.execute("UPDATE products SET title = 'mine now' WHERE id = $1::uuid",
                                  world["p2_active"]) == "UPDATE 0"
        # their own product is updatable (the policy is not just denying everything)
        assert await conn.execute("UPDATE products SET title = 'renamed' WHERE id = $1::uuid",
                                  world["p1_active"]) == "UPDATE 1"
    async with db.tx(Principal(world["s1_user"], "seller")) as conn:
        # and they cannot move a product of theirs to another seller (the WITH CHECK fails)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE products SET seller_id = $2::uuid WHERE id = $1::uuid",
                               world["p1_draft"], world["s2"])
    async with db.tx(SYSTEM) as conn:
        titles = {str(r["id"]): r["title"] for r in await conn.fetch("SELECT id, title FROM products")}
    assert titles[world["p2_active"]] == "Active two"
    assert titles[world["p1_active"]] == "renamed"


async def test_seller_sees_own_drafts_but_not_other_sellers_drafts(db, world):
    async with db.tx(Principal(world["s1_user"], "seller")) as conn:
        rows = await conn.fetch("SELECT * FROM products")
    assert ids(rows) == {world["p1_active"], world["p1_draft"], world["p2_active"]}


async def test_anonymous_sees_only_active_products(db, world):
    async with db.tx(ANONYMOUS) as conn:
        rows = await conn.fetch("SELECT * FROM products")
        assert ids(rows) == {world["p1_active"], world["p2_active"]}
        assert await conn.fetch("SELECT * FROM carts") == []
        assert await conn.fetch("SELECT * FROM orders") == []
        assert await conn.execute("UPDATE products SET title = 'x'") == "UPDATE 0"


async def test_customer_sees_only_active_products(db, world):
    async with db.tx(Principal(world["a"], "customer")) as conn:
        rows = await conn.fetch("SELECT * FROM products")
    assert ids(rows) == {world["p1_active"], world["p2_active"]}


async def test_internal_tables_are_closed_to_users(db, world):
    async with db.tx(SYSTEM) as conn:
        await conn.execute("INSERT INTO email_outbox (to_address, subject, body) VALUES ('a@x.io', 's', 'b')")
    async with db.tx(Principal(world["a"], "customer")) as conn:
        assert await conn.fetch("SELECT * FROM email_outbox") == []
        assert await conn.fetch("SELECT * FROM email_codes") == []
    async with db.tx(Principal(world["a"], "customer")) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM schema_migrations")
