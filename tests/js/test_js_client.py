"""The join/chat/highlight flow from the official JS socket.io-client (run with node), as a browser would."""
import asyncio
import json
import shutil
from pathlib import Path

import pytest

JS = Path(__file__).parent
pytestmark = pytest.mark.skipif(shutil.which("node") is None or not (JS / "node_modules" / "socket.io-client").exists(),
                                reason="node and tests/js/node_modules are installed by `make test`")


async def test_join_chat_highlight_with_official_client(live):
    services = live.services
    from db import users as users_db
    from live.auth.principal import SYSTEM

    async with services.db.tx(SYSTEM) as conn:
        viewer = await users_db.find_or_create_by_name(conn, "js-viewer", "customer")
        seller = await users_db.find_or_create_by_name(conn, "demo-seller", "seller")
        product_id = await conn.fetchval(
            "SELECT product_id::text FROM livestream_products lp JOIN livestreams s ON s.id = lp.livestream_id "
            "WHERE s.slug = 'demo' ORDER BY position DESC LIMIT 1")
    base = live.base.rstrip("/")
    proc = await asyncio.create_subprocess_exec(
        "node", str(JS / "room_flow.mjs"), base, services.token_for(viewer), services.token_for(seller), product_id,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    r = json.loads(out.decode().strip().splitlines()[-1])
    assert r["viewerJoin"]["ok"] and r["viewerJoin"]["stream"]["slug"] == "demo"
    assert r["viewerJoin"]["media"]["can_publish"] is False and r["sellerJoin"]["media"]["can_publish"] is True
    assert r["chatAck"]["ok"] and r["chatAck"]["message"]["text"] == "hello from socket.io-client"
    assert [m["id"] for m in r["chatSeen"]] == [r["chatAck"]["message"]["id"]] * 2
    assert r["anonChat"]["error"]["code"] == "unauthorized"
    assert r["viewerHighlight"]["error"]["code"] == "forbidden"
    assert r["highlightAck"]["ok"] and r["highlighted"]["product"]["id"] == product_id
    assert r["transport"] == "websocket"  # upgraded from long-polling


async def test_connect_error_carries_code_and_message(live):
    """A bad token: the official client's connect_error has `message` a sentence and `data` {code, message}."""
    base = live.base.rstrip("/")
    for token in ("not-a-jwt", live.services.token_for({"id": "00000000-0000-4000-8000-000000000009",
                                                          "role": "customer", "name": "ghost"}) + "x"):
        proc = await asyncio.create_subprocess_exec(
            "node", str(JS / "connect_error.mjs"), base, token,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()
        r = json.loads(out.decode().strip().splitlines()[-1])
        assert isinstance(r["data"], dict), r
        assert r["data"]["code"] == "unauthorized" and isinstance(r["data"]["message"], str) and r["data"]["message"]
        assert r["message"] == r["data"]["message"] and not r["message"].startswith("{"), r
        assert r["message"] == "invalid token", r  # never the JWT library's reason
