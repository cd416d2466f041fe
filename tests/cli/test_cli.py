"""The `live` command, run as a real subprocess against a real database."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import jwt
import pytest

from tests.helpers import SECRET, owner_connection

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def live_env(dsn, tmp_path) -> dict:
    env = {**os.environ, "DATABASE_URL": dsn, "LIVE_ENV": "test", "JWT_SECRET": SECRET, "LOG_LEVEL": "warning",
           "LIVE_DATA_DIR": str(tmp_path / "data")}
    env.pop("LIVE_MIGRATIONS_DIR", None)
    return env


@pytest.fixture
def run_live(live_env):
    def run(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "live", *args], cwd=ROOT, env=live_env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    return run


async def fetch(dsn: str, sql: str, *args):
    async with owner_connection(dsn) as conn:
        return await conn.fetch(sql, *args)


def test_token_creates_a_seller_and_prints_a_jwt(run_live, dsn):
    token = run_live("token", "--user", "alice", "--role", "seller").strip()
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], issuer="live")
    assert claims["role"] == "seller"
    assert claims["name"] == "alice"
    assert claims["exp"] > claims["iat"]

    users = asyncio.run(fetch(dsn, "SELECT id::text AS id, role FROM users WHERE name = 'alice'"))
    assert [(u["id"], u["role"]) for u in users] == [(claims["sub"], "seller")]
    sellers = asyncio.run(fetch(dsn, "SELECT slug FROM sellers WHERE user_id = $1::uuid", claims["sub"]))
    assert [s["slug"] for s in sellers] == ["alice"]

    # a second token for the same name is for the same user, and there is still one seller row
    again = jwt.decode(run_live("token", "--user", "alice", "--role", "seller").strip(), SECRET,
                       algorithms=["HS256"], issuer="live")
    assert again["sub"] == claims["sub"]
    assert len(asyncio.run(fetch(dsn, "SELECT 1 FROM sellers WHERE user_id = $1::uuid", claims["sub"]))) == 1


def test_token_defaults_to_customer_without_seller_row(run_live, dsn):
    claims = jwt.decode(run_live("token", "--user", "bob").strip(), SECRET, algorithms=["HS256"], issuer="live")
    assert claims["role"] == "customer"
    assert asyncio.run(fetch(dsn, "SELECT 1 FROM sellers WHERE user_id = $1::uuid", claims["sub"])) == []


def test_token_rejects_an_unknown_role(live_env):
    proc = subprocess.run([sys.executable, "-m", "live", "token", "--user", "x", "--role", "root"], cwd=ROOT,
                          env=live_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "--role" in proc.stderr


async def counts(dsn: str) -> dict:
    async with owner_connection(dsn) as conn:
        return {
            "demo_streams": await conn.fetchval("SELECT count(*) FROM livestreams WHERE slug = 'demo'"),
            "streams": await conn.fetchval("SELECT count(*) FROM livestreams"),
            "products": await conn.fetchval("SELECT count(*) FROM products"),
            "variants": await conn.fetchval("SELECT count(*) FROM product_variants"),
            "inventory_events": await conn.fetchval("SELECT count(*) FROM inventory_events"),
            "stream_products": await conn.fetchval("SELECT count(*) FROM livestream_products"),
            "coupons": await conn.fetchval("SELECT count(*) FROM coupons"),
            "sellers": await conn.fetchval("SELECT count(*) FROM sellers"),
        }


def test_seed_is_idempotent(run_live, dsn):
    out = run_live("seed")
    assert "demo" in out
    first = asyncio.run(counts(dsn))
    assert first == {"demo_streams": 1, "streams": 1, "products": 6, "variants": 12, "inventory_events": 12,
                     "stream_products": 6, "coupons": 1, "sellers": 1}
    run_live("seed")
    assert asyncio.run(counts(dsn)) == first
    on_hand = asyncio.run(fetch(dsn, "SELECT sku, on_hand FROM product_variants WHERE sku = 'EAR-PRO-BLK'"))
    assert [(r["sku"], r["on_hand"]) for r in on_hand] == [("EAR-PRO-BLK", 100)]


def test_seed_after_the_demo_ended_starts_a_fresh_demo_show(run_live, dsn):
    """Ending a stream is final; the next seed keeps the ended show as history and makes a new live `demo`."""
    run_live("seed")
    first = asyncio.run(fetch(dsn, "SELECT id::text AS id FROM livestreams WHERE slug = 'demo'"))[0]["id"]
    asyncio.run(fetch(dsn, "UPDATE livestreams SET status = 'ended', ended_at = now() WHERE id = $1::uuid RETURNING 1",
                      first))
    assert "stream 'demo'" in run_live("seed")
    rows = asyncio.run(fetch(dsn, "SELECT id::text AS id, slug, status, livekit_room, spotlight_product_id::text AS "
                                  "spot FROM livestreams ORDER BY created_at"))
    assert [r["id"] for r in rows][0] == first and len(rows) == 2
    old, new = rows
    assert old["slug"].startswith("demo-") and old["status"] == "ended"
    assert new["slug"] == "demo" and new["status"] == "live" and new["id"] != first
    assert new["spot"] is not None and old["livekit_room"] != new["livekit_room"]
    products = asyncio.run(fetch(dsn, "SELECT count(*) AS n FROM livestream_products WHERE livestream_id = $1::uuid",
                                 new["id"]))
    assert products[0]["n"] == 6
    run_live("seed")  # a live demo is left alone
    assert len(asyncio.run(fetch(dsn, "SELECT 1 FROM livestreams"))) == 2


def test_serve_on_a_busy_port_says_so_in_one_line_and_starts_nothing(live_env, tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        env = {**live_env, "DATABASE_URL": "", "LIVE_DATA_DIR": str(tmp_path / "fresh")}
        proc = subprocess.run([sys.executable, "-m", "live", "serve", "--port", str(port)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"live: port {port} is in use"
    assert not (tmp_path / "fresh").exists()  # no embedded database was started


def test_token_for_a_suspended_user_is_refused_in_one_line(run_live, live_env, dsn):
    run_live("token", "--user", "mallory")
    asyncio.run(fetch(dsn, "UPDATE users SET suspended_at = now() WHERE name = 'mallory' RETURNING 1"))
    proc = subprocess.run([sys.executable, "-m", "live", "token", "--user", "mallory"], cwd=ROOT, env=live_env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip() == "live: this account is suspended"
