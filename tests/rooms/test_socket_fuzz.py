"""Random Socket.IO events and payloads, with no unhandled exception in the log (issue 11's acceptance).

Hypothesis draws event names (the protocol's and random ones) and payload shapes (well-formed fields with random
values, random JSON, several arguments, none, bytes), sent over real sockets by real python-socketio clients
(anonymous, customer, seller, admin) and by a raw Engine.IO websocket client (any JSON, lone surrogate escapes,
integers past 64 bits). Every ack must be `{ok: true, ...}` or `{ok: false, error: {code, message}}` with a code
of the protocol, and nothing may be logged at error level. Hypothesis runs in a worker thread and hands each
example to the test's event loop, where the server and the clients live."""
from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.rooms.harness import BAD_VALUES, CODES, SELLER, RawWs, err, start_live

EVENTS = ("join", "leave", "chat:send", "chat:delete", "user:mute", "user:ban", "user:unban", "chat:slowmode",
          "moderator:add", "moderator:remove", "reaction", "stream:start", "stream:end", "product:highlight",
          "product:unhighlight", "cart:add", "cart:update", "cart:remove")
RESERVED = {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
WHO = ("anon", "customer", "seller", "admin", "raw")


class World:
    """The ids the fuzzer may aim at: real ones (so handlers go deep) beside unknown and malformed ones."""

    def __init__(self, stream_id: str, users: list[str], products: list[str], variants: list[str], epoch: str):
        self.stream_id, self.users, self.products, self.variants = stream_id, users, products, variants
        self.epoch = epoch


# the fields each event takes (a payload of these with good values reaches the handler's rules)
FIELDS = {"join": ("stream_id", "last_seq", "epoch"), "leave": ("stream_id",), "chat:send": ("stream_id", "text"),
          "chat:delete": ("stream_id", "message_id"), "user:mute": ("stream_id", "user_id", "seconds"),
          "user:ban": ("stream_id", "user_id", "reason"), "user:unban": ("stream_id", "user_id"),
          "chat:slowmode": ("stream_id", "seconds"),
          "moderator:add": ("stream_id", "user_id"), "moderator:remove": ("stream_id", "user_id"),
          "reaction": ("stream_id", "kind"), "stream:start": ("stream_id",), "stream:end": ("stream_id",),
          "product:highlight": ("stream_id", "product_id"), "product:unhighlight": ("stream_id",),
          "cart:add": ("variant_id", "qty", "idempotency_key", "stream_id"),
          "cart:update": ("variant_id", "qty", "stream_id"), "cart:remove": ("variant_id",)}


def strategies(world: World):
    leaf = (st.none() | st.booleans() | st.integers(min_value=-(2 ** 70), max_value=2 ** 70)
            | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
    anything = st.recursive(leaf, lambda inner: st.lists(inner, max_size=3)
                            | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)
    nasty = st.sampled_from(["", " ", "a\x00b", "\x07", "\ud83d", "x\udc00y", "😀", "x" * 501, "\n\t", "DROP"])
    good = {
        "stream_id": st.sampled_from(["demo", "demo", world.stream_id, "no-such-stream"]),
        "text": st.sampled_from(["hello", "nice!", "how much?", "  padded  "]) | st.text(min_size=1, max_size=30),
        "user_id": st.sampled_from(world.users),
        "seconds": st.integers(min_value=0, max_value=120),
        "message_id": st.integers(min_value=1, max_value=500),
        "reason": st.none() | st.sampled_from(["spam", "rude"]),
        "kind": st.sampled_from(["heart", "fire", "clap", "wow", "laugh"]),
        "product_id": st.sampled_from(world.products),
        "variant_id": st.sampled_from(world.variants),
        "qty": st.integers(min_value=0, max_value=4),
        "idempotency_key": st.text(alphabet="abcdef0123456789", min_size=1, max_size=12),
        "last_seq": st.integers(min_value=0, max_value=200),
        "epoch": st.sampled_from([world.epoch, "stale-epoch"]),
    }
    bad = {name: nasty | anything | st.integers(min_value=-(2 ** 70), max_value=2 ** 70)
           | st.just(str(uuid.UUID(int=7))) for name in good}

    def payloads(event: str):
        names = FIELDS.get(event, tuple(good))
        fine = dict(good)
        if event == "stream:end":  # ending is final: end another stream, so that chat goes on in the demo one
            fine["stream_id"] = st.sampled_from(["fuzz-show", "no-such-stream"])
        valid = st.fixed_dictionaries({n: fine[n] for n in names})
        spoiled = st.sampled_from(names).flatmap(lambda n: st.fixed_dictionaries(
            {**{m: fine[m] for m in names if m != n}, **{n: bad[n]}}))
        partial = st.fixed_dictionaries({}, optional={n: good[n] | bad[n] for n in good})
        payload = st.one_of(valid, valid, valid, spoiled, spoiled, partial, anything, st.binary(max_size=8))
        # mostly one payload; sometimes none, or two
        return st.one_of(st.tuples(payload), st.tuples(payload), st.tuples(payload), st.just(()),
                         st.tuples(payload, payload))

    known = st.sampled_from(EVENTS).flatmap(lambda e: st.tuples(st.just(e), payloads(e)))
    unknown = st.text(max_size=16).filter(lambda e: e not in RESERVED).flatmap(
        lambda e: st.tuples(st.just(e), payloads(e)))
    step = st.tuples(st.sampled_from(WHO), st.one_of(known, known, known, unknown)).map(lambda t: (t[0], *t[1]))
    return st.lists(step, min_size=1, max_size=5)


def check_ack(ack, where) -> str:
    code = err(ack)  # the ack's shape
    assert code is None or code in CODES, (where, ack)
    return code or "ok"


class Fuzzer:
    """The clients, kept connected, and how one step is sent."""

    def __init__(self, live, tokens: dict[str, str | None]):
        self.live, self.tokens = live, tokens
        self.clients: dict[str, object] = {}
        self.raw: RawWs | None = None
        self.ack_id = 0
        self.results: Counter[tuple[str, str]] = Counter()  # (event, ack code) of protocol events
        url = live.client.make_url("/")
        self.hostport = (url.host, url.port)

    async def client(self, who: str):
        v = self.clients.get(who)
        if v is None or not v.sio.connected:
            name = None if who == "anon" else who
            token = self.tokens[who]
            user_id = None
            v = await self.live.open_viewer(self.live.base, token, name, user_id, None, {})
            self.clients[who] = v
        return v

    async def raw_client(self) -> RawWs:
        if self.raw is None or self.raw.writer.is_closing():
            if self.raw is not None:
                self.raw.close()
            self.raw = await RawWs.connect(*self.hostport)
            self.raw.send("40" + json.dumps({"token": self.tokens["customer"]}))
            await self.raw.recv_until(lambda t: t.startswith("40"))
        return self.raw

    async def step(self, who: str, event: str, args: tuple) -> None:
        if who == "raw":
            ws = await self.raw_client()
            self.ack_id += 1
            frame = json.dumps([event, *args], default=lambda b: b.hex())  # ensure_ascii: lone surrogates escaped
            ws.send(f"42{self.ack_id}{frame}")
            prefix = f"43{self.ack_id}["
            text = await ws.recv_until(lambda t: t.startswith(prefix))
            code = check_ack(json.loads(text[len(prefix) - 1:])[0], (who, event, args))
        else:
            v = await self.client(who)
            data = None if not args else args[0] if len(args) == 1 else args
            code = check_ack(await v.sio.call(event, data, timeout=10), (who, event, args))
        self.results[event if event in EVENTS else "other", code] += 1

    async def play(self, steps) -> None:
        for who, event, args in steps:
            await self.step(who, event, args)

    async def close(self) -> None:
        if self.raw is not None:
            self.raw.close()
        await self.live.close_viewers()


@pytest.fixture
async def fuzz_live(tmp_path, dsn, aiohttp_client):
    # the per-socket event limit would answer most of a fast fuzzer's events (test_rooms_hardening covers it)
    lv = await start_live(tmp_path, dsn, aiohttp_client, socket_event_rate=10_000, socket_event_burst=100_000,
                          socket_flood_disconnect=100_000)
    yield lv
    await lv.close_viewers()


async def setup_world(live) -> tuple[World, dict[str, str | None]]:
    """Users of every kind (tokens by role), a second stream of the demo seller, the demo's products."""
    tokens: dict[str, str | None] = {"anon": None}
    users = []
    for who, role in (("customer", "customer"), ("seller", "seller"), ("admin", "admin")):
        user_id, tokens[who] = await live.user(SELLER if who == "seller" else f"fuzz-{who}", role)
        users.append(user_id)
    for name in ("fuzz-victim", "fuzz-helper"):  # someone to mute, ban and appoint
        users.append((await live.user(name))[0])
    status, _ = await live.api("POST", "/livestreams", tokens["seller"], {"title": "Fuzz show", "slug": "fuzz-show"})
    assert status == 201
    products = (await live.api("GET", "/livestreams/demo/products"))[1]["items"]
    state = await live.demo_state()
    world = World(state.id, users, [p["id"] for p in products],
                  [v["id"] for p in products for v in p["variants"]], live.services.broker.epoch)
    return world, tokens


async def test_every_field_of_every_event_with_bad_values(fuzz_live, errors_logged):
    """The systematic half: each field of each event's well-formed payload replaced by each bad value, sent by a
    customer and by the seller (who may moderate, so the payloads reach the deepest handlers)."""
    live = fuzz_live
    world, tokens = await setup_world(live)
    fuzzer = Fuzzer(live, tokens)
    victim = world.users[3]
    good = {"stream_id": "demo", "text": "hello", "user_id": victim, "seconds": 5, "message_id": 1, "reason": "spam",
            "kind": "heart", "product_id": world.products[0], "variant_id": world.variants[0], "qty": 1,
            "idempotency_key": "k1", "last_seq": 0, "epoch": world.epoch}
    try:
        for who in ("customer", "seller"):
            for event, names in FIELDS.items():
                base = {n: good[n] for n in names}
                if event == "stream:end":
                    base["stream_id"] = "fuzz-show"
                for name in names:
                    for value in BAD_VALUES:
                        await fuzzer.step(who, event, ({**base, name: value},))
    finally:
        await fuzzer.close()
    assert errors_logged() == []
    assert {e for e, _ in fuzzer.results} == set(EVENTS)


async def test_random_events_and_payloads(fuzz_live, errors_logged):
    live = fuzz_live
    world, tokens = await setup_world(live)
    fuzzer = Fuzzer(live, tokens)
    loop = asyncio.get_running_loop()

    @settings(max_examples=600, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(strategies(world))
    def random_steps(steps):
        asyncio.run_coroutine_threadsafe(fuzzer.play(steps), loop).result(timeout=60)

    try:
        await loop.run_in_executor(None, random_steps)
    finally:
        await fuzzer.close()
    assert errors_logged() == []
    # the fuzzer reached the handlers, not only the validation: every event answered, some accepted
    print(sorted(fuzzer.results.items()))
    assert {e for e, _ in fuzzer.results} >= set(EVENTS) | {"other"}
    assert {c for _, c in fuzzer.results} >= {"ok", "invalid", "not_found", "forbidden", "unauthorized"}
    # and the server still serves: a fresh viewer joins and gets a snapshot
    v = await live.viewer("after-the-fuzz")
    assert v.joined["ok"] and v.joined["stream"]["slug"] == "demo"
