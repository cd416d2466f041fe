"""Sockets of tokens whose user does not exist (a signed token for an id that never existed, or a user deleted
since): they connect, watch and react (the load tests mint such viewers, and a join storm costs no query), but
every event that writes on the user's behalf answers `{ok: false, error: {code: "unauthorized", message:
"unknown user"}}` and changes nothing: chat, moderation, the seller's stream events and the cart. Real
python-socketio clients over real websockets against the real server and PostgreSQL."""
from __future__ import annotations

import asyncio
import uuid

import pytest

from db import inventory as inventory_db
from live.auth.principal import SYSTEM, Principal
from live.errors import DomainError
from tests.auth.helpers import owner_execute
from tests.commerce.harness import assert_sold_exactly, crowd
from tests.rooms.harness import err

UNKNOWN = {"ok": False, "error": {"code": "unauthorized", "message": "unknown user"}}


@pytest.fixture
def statements(monkeypatch) -> list[list[str]]:
    """The buyers of every cart statement (commerce_cart_changes) the server runs, in order."""
    real = inventory_db.cart_changes
    seen: list[list[str]] = []

    async def counted(conn, variant_id, changes, *args):
        seen.append([c.user_id for c in changes])
        return await real(conn, variant_id, changes, *args)

    monkeypatch.setattr(inventory_db, "cart_changes", counted)
    return seen


async def ghost(live, role: str = "customer", *, join: str | None = "demo"):
    """A viewer whose token is signed with the server's secret for a random id that has no users row."""
    user_id = str(uuid.uuid4())
    token = live.services.tokens.issue(user_id, role, "ghost")
    return await live.open_viewer(live.base, token, "ghost", user_id, join, {})


async def fetchval(live, sql: str, *args):
    async with live.services.db.tx(SYSTEM) as conn:
        return await conn.fetchval(sql, *args)


async def cart_writes(live, user_id: str) -> int:
    """Rows a user's cart changes leave: carts, and reservations or releases they made."""
    return await fetchval(live, """SELECT (SELECT count(*) FROM carts WHERE user_id = $1::uuid)
                                        + (SELECT count(*) FROM inventory_events WHERE actor_id = $1::uuid)""", user_id)


async def test_an_unknown_user_watches_and_reacts_but_cannot_chat_or_use_a_cart(live, errors_logged, statements):
    watcher = await live.viewer("uu-watcher")
    g = await ghost(live)
    assert g.joined["ok"] and g.joined["stream"]["slug"] == "demo"  # watching is allowed
    assert (await g.call("reaction", {"stream_id": "demo", "kind": "heart"}))["ok"]  # totals only: allowed

    variant = g.joined["spotlight"]["variants"][0]
    assert variant["available"] > 1
    assert await g.call("cart:add", {"variant_id": variant["id"], "qty": 1, "idempotency_key": "g-1"}) == UNKNOWN
    assert len(statements) == 1  # it went to the database once (no query of its own) ...
    assert await g.call("cart:update", {"variant_id": variant["id"], "qty": 2}) == UNKNOWN
    assert await g.call("cart:remove", {"variant_id": variant["id"]}) == UNKNOWN
    assert await g.call("cart:add", {"variant_id": variant["id"]}) == UNKNOWN
    assert len(statements) == 1  # ... and this connection's later changes not at all
    assert await cart_writes(live, g.user_id) == 0
    state = await live.demo_state()
    assert state.spotlight["variants"][0]["available"] == variant["available"]

    assert await g.say("hello from nobody") == UNKNOWN
    assert await g.say("again") == UNKNOWN
    ok = await watcher.say("a real message")
    assert ok["ok"]
    await live.barrier(watcher, g)
    assert [m["text"] for m in watcher.events["chat:new"]] == ["a real message"]
    assert await fetchval(live, "SELECT count(*) FROM chat_messages WHERE user_id = $1::uuid", g.user_id) == 0

    # moderation by a customer that does not exist: refused before anything is looked at
    assert err(await g.call("user:mute", {"stream_id": "demo", "user_id": watcher.user_id, "seconds": 60})) in (
        "unauthorized", "forbidden")
    assert errors_logged() == []


async def test_an_unknown_admin_changes_nothing(live, errors_logged):
    """A token naming the admin role for a user that does not exist (an admin deleted while their token lives):
    none of the stream's moderation or seller events goes through."""
    watcher = await live.viewer("uu-watcher2")
    said = await watcher.say("keep me")
    assert said["ok"]
    g = await ghost(live, "admin")
    target = {"stream_id": "demo", "user_id": watcher.user_id}
    product = (await live.demo_state()).spotlight["id"]
    events = [
        ("chat:delete", {"stream_id": "demo", "message_id": said["message"]["id"]}),
        ("user:mute", {**target, "seconds": 60}),
        ("user:ban", {**target, "reason": "ghost"}),
        ("user:unban", target),
        ("chat:slowmode", {"stream_id": "demo", "seconds": 30}),
        ("moderator:add", target),
        ("moderator:remove", target),
        ("product:unhighlight", {"stream_id": "demo"}),
        ("product:highlight", {"stream_id": "demo", "product_id": product}),
        ("stream:end", {"stream_id": "demo"}),
        ("stream:start", {"stream_id": "demo"}),
    ]
    for event, payload in events:
        assert await g.call(event, payload) == UNKNOWN, event

    state = await live.demo_state()
    assert state.status == "live" and state.slow_mode == 0 and state.spotlight["id"] == product
    assert watcher.user_id not in state.bans and state.muted_until(watcher.user_id) is None
    assert watcher.user_id not in state.moderators
    assert await fetchval(live, "SELECT count(*) FROM audit_log WHERE actor_id = $1::uuid", g.user_id) == 0
    assert await fetchval(live, "SELECT status FROM livestreams WHERE slug = 'demo'") == "live"
    await live.barrier(watcher)
    assert not any(e in watcher.events for e in ("chat:deleted", "user:muted", "user:banned", "chat:slowmode",
                                                 "moderator:added", "stream:status", "product:unhighlighted"))
    assert (await watcher.say("still here"))["ok"]
    assert errors_logged() == []


async def test_a_user_deleted_while_connected_is_refused(live, dsn, errors_logged):
    user_id, token = await live.user("uu-deleted")
    v = await live.open_viewer(live.base, token, "uu-deleted", user_id, "demo", {})
    variant = v.joined["spotlight"]["variants"][0]["id"]
    added = await v.call("cart:add", {"variant_id": variant, "qty": 1})  # a real user: it works
    assert added["ok"] and added["cart"]["item_count"] == 1
    watcher = await live.viewer("uu-watcher3")

    await owner_execute(dsn, "DELETE FROM users WHERE id = $1::uuid", user_id)  # their cart goes with them
    assert await v.say("am I still here?") == UNKNOWN
    assert await v.call("cart:add", {"variant_id": variant, "qty": 1}) == UNKNOWN
    assert await v.call("cart:update", {"variant_id": variant, "qty": 2}) == UNKNOWN
    assert await fetchval(live, "SELECT count(*) FROM carts WHERE user_id = $1::uuid", user_id) == 0
    assert (await v.call("reaction", {"stream_id": "demo", "kind": "fire"}))["ok"]
    await live.barrier(watcher)
    assert "chat:new" not in watcher.events
    assert errors_logged() == []


async def test_an_unknown_buyer_in_a_batch_fails_alone_in_few_statements(shop, statements):
    """A flash-sale batch holding one change of a user that does not exist: that change is refused
    `unauthorized`, the others go through in order, and finding it takes a few statements, not one per change
    (the failed batch is split in halves, and each half is screened again against the known stock first)."""
    seller = await shop.seller()
    vid = (await shop.product(seller, stock=3))["variants"][0]["id"]
    buyers = await crowd(shop, 40)
    nobody = str(uuid.uuid4())
    principals = [Principal(b.id, "customer") for b in buyers]
    principals.insert(1, Principal(nobody, "customer"))
    cart = shop.services.commerce.cart
    cart.board.forget()

    async def add(principal):
        try:
            await cart.add(principal, vid, 1)
            return "ok"
        except DomainError as exc:
            return exc.code, exc.message

    results = await asyncio.gather(*[add(p) for p in principals])
    assert results[1] == ("unauthorized", "unknown user")
    others = results[:1] + results[2:]
    assert others[:3] == ["ok"] * 3
    assert all(r[0] == "out_of_stock" for r in others[3:]), others
    assert [nobody] in statements  # found alone in the end
    # one change alone per statement would be 41 statements and more; halving finds it in about 2 log2(41)
    assert len(statements) <= 14, [len(s) for s in statements]
    await assert_sold_exactly(shop, vid, 3, 3)


async def test_a_writer_is_looked_up_once_and_an_unknown_one_once_per_connection(live, monkeypatch):
    """The check costs no query per event: a user found is remembered (AuthStates, KNOWN_SECONDS), a connection
    whose user was not found is refused from then on without asking; a sender's messages keep their order."""
    from db import users as users_db

    real = users_db.existing
    asked: list[str] = []

    async def counted(conn, user_ids):
        asked.extend(user_ids)
        return await real(conn, user_ids)

    monkeypatch.setattr(users_db, "existing", counted)
    talker = await live.viewer("uu-talker")
    acks = await asyncio.gather(*[talker.say(f"m{i}") for i in range(4)])  # the first one waits for the lookup
    assert all(a["ok"] for a in acks), acks
    assert [a["message"]["text"] for a in sorted(acks, key=lambda a: a["message"]["seq"])] == ["m0", "m1", "m2", "m3"]
    assert asked == [talker.user_id]

    g = await ghost(live)
    acks = await asyncio.gather(*[g.say(f"g{i}") for i in range(3)],
                                g.call("user:mute", {"stream_id": "demo", "user_id": talker.user_id, "seconds": 5}))
    assert acks == [UNKNOWN] * 4
    assert asked == [talker.user_id, g.user_id]


async def test_rest_cart_of_a_user_deleted_within_the_remembered_minute_is_401(live, dsn):
    """REST looks users up and remembers them KNOWN_SECONDS: a user deleted within that time reaches the cart
    statement, which refuses them the same way (401 `unknown user`, not a 500)."""
    user_id, token = await live.user("uu-rest")
    variant = (await live.demo_state()).spotlight["variants"][0]["id"]
    status, body = await live.api("GET", "/me/cart", token)
    assert status == 200, body  # remembered from now on
    await owner_execute(dsn, "DELETE FROM users WHERE id = $1::uuid", user_id)
    status, body = await live.api("POST", "/me/cart/items", token, json={"variant_id": variant, "qty": 1})
    assert (status, body) == (401, {"error": {"code": "unauthorized", "message": "unknown user"}})
    assert await cart_writes(live, user_id) == 0


async def test_first_writes_of_many_users_at_once_share_one_lookup(live, monkeypatch):
    """A show's start: hundreds of users' first chat at once cost one query (not one each), the unknown among
    them are refused, and a failed query fails each of its waiters, the next ones asking again."""
    from db import users as users_db
    from live.errors import UnknownUser

    auth = live.services.auth
    real, calls = users_db.existing, []

    async def counted(conn, ids):
        calls.append(len(ids))
        return await real(conn, ids)

    monkeypatch.setattr(users_db, "existing", counted)
    known = [(await live.user(f"uu-first-{i}"))[0].upper() for i in range(5)]  # any spelling of a uuid
    unknown = [str(uuid.uuid4()) for _ in range(300)]
    outcomes = await asyncio.gather(*(auth.ensure_known(u) for u in [*known, *unknown, *known]),
                                    return_exceptions=True)
    assert calls == [305]
    assert outcomes[:5] == [None] * 5 and outcomes[-5:] == [None] * 5
    assert all(isinstance(o, UnknownUser) for o in outcomes[5:-5])
    await auth.ensure_known(known[0])  # remembered: no query
    assert calls == [305]

    async def failing(conn, ids):
        calls.append(len(ids))
        raise ConnectionError("database away")

    monkeypatch.setattr(users_db, "existing", failing)
    fresh = [str(uuid.uuid4()) for _ in range(3)]
    outcomes = await asyncio.gather(*(auth.ensure_known(u) for u in fresh), return_exceptions=True)
    assert calls[1:] == [3] and all(isinstance(o, ConnectionError) for o in outcomes)
    monkeypatch.setattr(users_db, "existing", counted)
    with pytest.raises(UnknownUser):
        await auth.ensure_known(fresh[0])  # asked again, not remembered as an error
    assert calls[2:] == [1]
