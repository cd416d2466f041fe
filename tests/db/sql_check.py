"""Standalone check of migrations/*.sql against an embedded PostgreSQL (pgserver).

Run:  python tests/db/sql_check.py      (needs pgserver and asyncpg)

1. applies every migration, each in its own transaction, to a fresh database with the project's
   db.migrate (so schema_migrations exists exactly as in production);
2. applies them again to two more fresh databases concurrently (role already exists);
3. drops everything including the live_app role and applies to two databases concurrently
   again, so both race to create the cluster-wide role;
4. checks row-level security as the app uses it (SET LOCAL role live_app + app.* settings)
   and a few constraints.
Runs every check and exits non-zero if one failed.
"""

from __future__ import annotations

import asyncio
import pathlib
import re
import shutil
import sys
import tempfile
import uuid

import asyncpg
import pgserver

ROOT = pathlib.Path(__file__).resolve().parents[2]
MIGRATIONS = sorted((ROOT / "migrations").glob("*.sql"))
sys.path.insert(0, str(ROOT))
from db.migrate import migrate as project_migrate  # noqa: E402 (the repository root is on the path now)

# same bookkeeping table db/migrate.py creates before running any migration
SCHEMA_MIGRATIONS = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now())"""


def db_uri(base: str, dbname: str) -> str:
    # pgserver uri: postgresql://postgres:@/postgres?host=/tmp/...
    head, _, query = base.partition("?")
    head = head.rsplit("/", 1)[0] + "/" + dbname
    return head + ("?" + query if query else "")


async def migrate(uri: str, barrier: asyncio.Barrier | None = None) -> None:
    conn = await asyncpg.connect(uri)
    try:
        await conn.execute(SCHEMA_MIGRATIONS)
        for path in MIGRATIONS:
            sql = path.read_text()
            async with conn.transaction():
                if barrier is not None and path.name.startswith("0001"):
                    await barrier.wait()  # start 0001 in both databases at the same moment
                await conn.execute(sql)
    finally:
        await conn.close()


async def create_db(admin: asyncpg.Connection, name: str) -> None:
    await admin.execute(f'CREATE DATABASE "{name}"')


class Checker:
    def __init__(self) -> None:
        self.failures = 0
        self.passed = 0

    def check(self, cond: bool, what: str) -> None:
        if cond:
            self.passed += 1
            print(f"  ok   {what}")
        else:
            self.failures += 1
            print(f"  FAIL {what}")


async def as_app(conn: asyncpg.Connection, user_id, role: str) -> None:
    """What every request transaction does (must be called inside a transaction)."""
    await conn.execute(
        "SELECT set_config('role', 'live_app', true), set_config('app.user_id', $1, true), "
        "set_config('app.role', $2, true)",
        str(user_id) if user_id else "",
        role,
    )


async def expect_error(conn, sql, *args, sqlstate=None):
    """Run sql in a savepoint; return the exception (or None if it succeeded)."""
    try:
        async with conn.transaction():
            await conn.execute(sql, *args)
    except asyncpg.PostgresError as e:
        if sqlstate is None or e.sqlstate == sqlstate:
            return e
        raise
    return None


async def rls_checks(uri: str, c: Checker) -> None:
    conn = await asyncpg.connect(uri)
    try:
        # every table has RLS enabled (none forced, so the owner keeps access)
        rows = await conn.fetch(
            "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
            "WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' AND relname <> 'schema_migrations'"
        )
        no_rls = [r["relname"] for r in rows if not r["relrowsecurity"]]
        forced = [r["relname"] for r in rows if r["relforcerowsecurity"]]
        c.check(not no_rls, f"RLS enabled on all {len(rows)} tables {no_rls or ''}")
        c.check(not forced, "no table forces RLS")
        c.check(not await conn.fetchval(
            "SELECT has_table_privilege('live_app', 'schema_migrations', 'SELECT, INSERT, UPDATE, DELETE')"),
            "live_app has no access to schema_migrations")

        # ---- fixtures, inserted as the owner -------------------------------
        A, B, C, D = (uuid.uuid4() for _ in range(4))  # A, B buyers; C, D seller users
        for uid, name, role in ((A, "Alice", "customer"), (B, "Bob", "customer"),
                                (C, "Carol", "seller"), (D, "Dave", "seller")):
            await conn.execute("INSERT INTO users (id, name, role, email) VALUES ($1, $2, $3, $4)",
                               uid, name, role, f"{name.lower()}@example.com")
        S1 = await conn.fetchval("INSERT INTO sellers (user_id, display_name, slug) "
                                 "VALUES ($1, 'Carol shop', 'carol') RETURNING id", C)
        S2 = await conn.fetchval("INSERT INTO sellers (user_id, display_name, slug) "
                                 "VALUES ($1, 'Dave shop', 'dave') RETURNING id", D)
        P1 = await conn.fetchval("INSERT INTO products (seller_id, title, description, status) "
                                 "VALUES ($1, 'Red dress', 'silk summer dress', 'active') RETURNING id", S1)
        P2 = await conn.fetchval("INSERT INTO products (seller_id, title, status) "
                                 "VALUES ($1, 'Secret draft', 'draft') RETURNING id", S2)
        V1 = await conn.fetchval("INSERT INTO product_variants (product_id, sku, price_minor, currency, on_hand) "
                                 "VALUES ($1, 'RED-M', 4999, 'USD', 10) RETURNING id", P1)
        V2 = await conn.fetchval("INSERT INTO product_variants (product_id, sku, price_minor, currency, on_hand) "
                                 "VALUES ($1, 'DRAFT-1', 100, 'USD', 5) RETURNING id", P2)
        L1 = await conn.fetchval("INSERT INTO livestreams (seller_id, slug, title) "
                                 "VALUES ($1, 'carol-live', 'Carol live') RETURNING id", S1)
        orders = {}
        for uid, sid in ((A, S1), (B, S2)):
            await conn.execute("INSERT INTO carts (user_id) VALUES ($1)", uid)
            await conn.execute("INSERT INTO addresses (user_id, name, line1, city, country) "
                               "VALUES ($1, 'Home', '1 Main St', 'Springfield', 'US')", uid)
            orders[uid] = await conn.fetchval(
                "INSERT INTO orders (user_id, seller_id, subtotal_minor, total_minor, currency) "
                "VALUES ($1, $2, 4999, 4999, 'USD') RETURNING id", uid, sid)
        await conn.execute("INSERT INTO webhook_events (provider, event_key, payload) VALUES ('stripe', 'evt_1', '{}')")
        await conn.execute("INSERT INTO email_codes (email, code_hash, expires_at) "
                           "VALUES ('alice@example.com', 'h', now() + interval '10 minutes')")
        num = await conn.fetchval("SELECT number FROM orders WHERE id = $1", orders[A])
        c.check(re.fullmatch(r"LS-\d{4}-\d{6,}", num) is not None, f"order number default ({num})")

        # ---- customer A ------------------------------------------------------
        print("customer A:")
        async with conn.transaction():
            await as_app(conn, A, "customer")
            c.check(await conn.fetchval("SELECT current_user") == "live_app", "runs as live_app")
            for table in ("carts", "orders", "addresses"):
                rows = await conn.fetch(f"SELECT user_id FROM {table}")
                c.check([r["user_id"] for r in rows] == [A], f"{table}: only A's row")
            c.check(await conn.fetchval("SELECT count(*) FROM users") == 4, "users: public profiles")
            c.check(await conn.fetchval("SELECT count(*) FROM products") == 1, "products: only active")
            c.check(await conn.fetchval("SELECT count(*) FROM product_variants") == 1, "variants: only active")
            c.check(await conn.fetchval(
                "SELECT count(*) FROM products WHERE search @@ plainto_tsquery('simple', 'silk')") == 1,
                "full-text search")
            n = await conn.execute("UPDATE product_variants SET on_hand = 0")
            c.check(n == "UPDATE 0", "customer cannot touch stock")
            n = await conn.execute("UPDATE orders SET shipping_address = '{}' WHERE id = $1", orders[B])
            c.check(n == "UPDATE 0", "customer cannot update another buyer's order")
            e = await expect_error(
                conn, "INSERT INTO orders (user_id, seller_id, subtotal_minor, total_minor, currency) "
                      "VALUES ($1, $2, 1, 1, 'USD')", B, S1, sqlstate="42501")
            c.check(e is not None, "customer cannot create an order for someone else")
            e = await expect_error(conn, "UPDATE users SET role = 'admin' WHERE id = $1", A, sqlstate="42501")
            c.check(e is not None, "customer cannot promote self to admin")
            n = await conn.execute("UPDATE users SET name = 'Alice A.' WHERE id = ANY($1::uuid[])", [A, B])
            c.check(n == "UPDATE 1", "user updates only own profile")
            e = await expect_error(conn, "INSERT INTO users (name) VALUES ('x')", sqlstate="42501")
            c.check(e is not None, "customer cannot insert users")
            await conn.execute("INSERT INTO chat_messages (livestream_id, user_id, text) VALUES ($1, $2, 'hi')", L1, A)
            c.check(True, "customer posts chat as self")
            e = await expect_error(conn, "INSERT INTO chat_messages (livestream_id, user_id, text) "
                                         "VALUES ($1, $2, 'spoof')", L1, B, sqlstate="42501")
            c.check(e is not None, "customer cannot post chat as someone else")
            for table in ("webhook_events", "email_codes"):
                c.check(await conn.fetchval(f"SELECT count(*) FROM {table}") == 0, f"{table} hidden")
            await conn.execute("INSERT INTO audit_log (actor_id, action) VALUES ($1, 'test')", A)
            c.check(await conn.fetchval("SELECT count(*) FROM audit_log") == 0, "audit_log write-only for users")
            await conn.execute("INSERT INTO contacts (name, email, message) VALUES ('A', 'a@x.io', 'hello')")
            c.check(True, "contact form insert")

        # ---- seller C (owns S1) --------------------------------------------
        print("seller C:")
        async with conn.transaction():
            await as_app(conn, C, "seller")
            rows = await conn.fetch("SELECT seller_id, user_id FROM orders")
            c.check([(r["seller_id"], r["user_id"]) for r in rows] == [(S1, A)], "seller sees only own orders")
            c.check(await conn.fetchval("SELECT count(*) FROM carts") == 0, "seller sees no carts")
            c.check(await conn.fetchval("SELECT count(*) FROM products") == 1, "seller: no foreign drafts")
            n = await conn.execute("UPDATE product_variants SET on_hand = 20 WHERE id = $1", V1)
            c.check(n == "UPDATE 1", "seller updates own stock")
            n = await conn.execute("UPDATE product_variants SET on_hand = 20 WHERE id = $1", V2)
            c.check(n == "UPDATE 0", "seller cannot update other seller's stock")
            e = await expect_error(conn, "UPDATE product_variants SET reserved = 15, sold = 6 WHERE id = $1",
                                   V1, sqlstate="23514")
            c.check(e is not None, "reserved + sold > on_hand rejected (as seller)")
            await conn.execute("INSERT INTO inventory_events (variant_id, kind, quantity, actor_id) "
                               "VALUES ($1, 'adjustment', 10, $2)", V1, C)
            c.check(await conn.fetchval("SELECT count(*) FROM inventory_events") == 1, "seller logs inventory")
            await conn.execute("INSERT INTO stream_bans (livestream_id, user_id, banned_by) VALUES ($1, $2, $3)",
                               L1, B, C)
            c.check(True, "seller bans B from own stream")
            n = await conn.execute("UPDATE chat_messages SET deleted_at = now(), deleted_by = $1", C)
            c.check(n == "UPDATE 1", "seller soft-deletes chat in own stream")
            e = await expect_error(conn, "UPDATE sellers SET kyc_status = 'verified' WHERE id = $1",
                                   S1, sqlstate="42501")
            c.check(e is not None, "seller cannot self-verify KYC")

        # ---- banned B, anon, admin ------------------------------------------
        print("others:")
        async with conn.transaction():
            await as_app(conn, B, "customer")
            c.check(await conn.fetchval("SELECT count(*) FROM stream_bans") == 1, "banned user sees own ban")
            e = await expect_error(conn, "INSERT INTO chat_messages (livestream_id, user_id, text) "
                                         "VALUES ($1, $2, 'let me in')", L1, B, sqlstate="42501")
            c.check(e is not None, "banned user cannot chat")
        async with conn.transaction():
            await as_app(conn, None, "anon")
            c.check(await conn.fetchval("SELECT count(*) FROM orders") == 0, "anon sees no orders")
            c.check(await conn.fetchval("SELECT count(*) FROM products") == 1, "anon sees active products")
            c.check(await conn.fetchval("SELECT count(*) FROM chat_messages") == 1, "anon reads chat")
        async with conn.transaction():
            await as_app(conn, uuid.uuid4(), "admin")
            c.check(await conn.fetchval("SELECT count(*) FROM orders") == 2, "admin sees all orders")
            c.check(await conn.fetchval("SELECT count(*) FROM audit_log") == 1, "admin reads audit_log")
            n = await conn.execute("DELETE FROM audit_log")
            c.check(n == "DELETE 0", "audit_log not deletable even by admin")

        # ---- constraints, as owner -------------------------------------------
        print("constraints:")
        e = await expect_error(conn, "UPDATE product_variants SET reserved = 8, sold = 3 WHERE id = $1",
                               V2, sqlstate="23514")
        c.check(e is not None, "reserved + sold > on_hand rejected (as owner)")
        await conn.execute("UPDATE product_variants SET reserved = 2, sold = 3 WHERE id = $1", V2)
        c.check(True, "reserved + sold <= on_hand accepted")
        e = await expect_error(conn, "UPDATE inventory_events SET quantity = 5", sqlstate="42501")
        c.check(e is not None, "inventory_events UPDATE forbidden")
        e = await expect_error(conn, "DELETE FROM inventory_events", sqlstate="42501")
        c.check(e is not None, "inventory_events DELETE forbidden")
        e = await expect_error(conn, "INSERT INTO carts (user_id) VALUES ($1)", A, sqlstate="23505")
        c.check(e is not None, "one active cart per user")
        e = await expect_error(conn, "INSERT INTO coupons (code, kind, value) VALUES ('HALF', 'percent', 150)",
                               sqlstate="23514")
        c.check(e is not None, "percent coupon <= 100")
        await conn.execute("INSERT INTO coupons (code, kind, value) VALUES ('half', 'percent', 50)")
        e = await expect_error(conn, "INSERT INTO coupons (code, kind, value) VALUES ('HALF', 'percent', 10)",
                               sqlstate="23505")
        c.check(e is not None, "coupon code unique case-insensitively (platform-wide)")
        e = await expect_error(conn, "INSERT INTO users (name, email) VALUES ('x', 'ALICE@example.com')",
                               sqlstate="23505")
        c.check(e is not None, "email unique case-insensitively")
        e = await expect_error(conn, "INSERT INTO orders (user_id, seller_id, subtotal_minor, discount_minor, "
                                     "total_minor, currency) VALUES ($1, $2, 100, 10, 100, 'USD')",
                               A, S1, sqlstate="23514")
        c.check(e is not None, "order total must equal subtotal - discount + shipping")
    finally:
        await conn.close()


async def main() -> int:
    tmp = tempfile.mkdtemp(prefix="live-sqlcheck-")
    srv = pgserver.get_server(tmp, cleanup_mode="stop")
    base = srv.get_uri()
    admin = await asyncpg.connect(base)
    c = Checker()
    try:
        print(f"migrations: {[p.name for p in MIGRATIONS]}")
        await admin.execute("DROP DATABASE IF EXISTS live_a")
        await create_db(admin, "live_a")
        applied = await project_migrate(db_uri(base, "live_a"), ROOT / "migrations")
        c.check(len(applied) == len(MIGRATIONS), f"fresh database migrated by db.migrate: {applied}")

        # again, two databases at once (the role already exists)
        for name in ("live_b", "live_c"):
            await create_db(admin, name)
        barrier = asyncio.Barrier(2)
        await asyncio.gather(*(migrate(db_uri(base, n), barrier) for n in ("live_b", "live_c")))
        c.check(True, "two databases migrated concurrently (role exists)")

        await rls_checks(db_uri(base, "live_a"), c)

        # real race: no role yet, both transactions try to create it
        for name in ("live_a", "live_b", "live_c"):
            await admin.execute(f'DROP DATABASE "{name}"')
        await admin.execute("DROP ROLE live_app")
        for name in ("live_d", "live_e"):
            await create_db(admin, name)
        barrier = asyncio.Barrier(2)
        await asyncio.gather(*(migrate(db_uri(base, n), barrier) for n in ("live_d", "live_e")))
        c.check(await admin.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = 'live_app'") == 1,
                "two databases raced to create live_app and both migrated")
        print("RLS checks again in a database from the race:")
        await rls_checks(db_uri(base, "live_e"), c)
    finally:
        await admin.close()
        srv.cleanup()  # stops the server (cleanup_mode='stop'); then remove its data directory
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{c.passed} passed, {c.failures} failed")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
