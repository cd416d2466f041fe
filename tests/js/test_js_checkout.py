"""The official JS socket.io-client (node) buys from the demo stream: join, cart:add of the spotlighted
product, REST checkout with the sandbox, the sandbox confirm, and order:update to paid (tests/js/checkout_flow.mjs)."""
import asyncio
import json
import re
import shutil
from pathlib import Path

import pytest

from db import users as users_db
from live.appkeys import SERVICES
from live.auth.principal import SYSTEM
from tests.commerce.harness import make_client

JS = Path(__file__).parent
pytestmark = pytest.mark.skipif(shutil.which("node") is None or not (JS / "node_modules" / "socket.io-client").exists(),
                                reason="node and tests/js/node_modules are installed by `make test`")


async def test_checkout_from_the_room_with_official_client(tmp_path, dsn, aiohttp_client):
    client = await make_client(tmp_path, dsn, aiohttp_client, seed_demo="true")
    services = client.app[SERVICES]
    async with services.db.tx(SYSTEM) as conn:
        buyer = await users_db.find_or_create_by_name(conn, "js-buyer", "customer")
    base = str(client.make_url("/")).rstrip("/")
    proc = await asyncio.create_subprocess_exec(
        "node", str(JS / "checkout_flow.mjs"), base, services.token_for(buyer),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0, err.decode()
    r = json.loads(out.decode().strip().splitlines()[-1])
    assert r["join"]["ok"] and r["join"]["stream"]["slug"] == "demo"
    assert r["add"]["ok"] and r["add"]["cart"]["items"][0]["quantity"] == 1
    assert r["retry"]["ok"] and r["retry"]["duplicate"] is True and r["retry"]["cart"]["items"][0]["quantity"] == 1
    assert r["checkoutStatus"] == 201 and r["checkout"]["payment"]["provider"] == "sandbox"
    order = r["checkout"]["orders"][0]
    assert re.match(r"^LS-\d{4}-\d{6,}$", order["number"])
    assert r["pending"]["order"]["id"] == order["id"]
    # the webhook is stored and answered at once; its job applies it (the push below says it was)
    assert r["confirmStatus"] == 200 and r["confirm"]["webhook"]["body"]["queued"] is True
    assert r["paid"]["order"]["status"] == "paid" and r["paid"]["order"]["number"] == order["number"]
    assert r["order"]["status"] == "paid" and r["order"]["payment"]["status"] == "succeeded"
    assert r["stockSeen"] and r["stockSeen"][-1] == r["before"] - 1
    assert r["transport"] == "websocket"
