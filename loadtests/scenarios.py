"""The scenarios: what each generator process does once every viewer has joined (`run`), and what the parent
makes of the processes' results (`summarize`).

* audience: chatters (the first --chatters viewers, real users from --tokens) send `chat:send` at --rate
  in all, authenticated viewers send `reaction` at --reactions per second, for --duration seconds.
* join-storm: nothing after the joins; the interesting numbers are the join phase's.
* flash-sale: every buyer (the first --buyers viewers, real users from --tokens) sends `cart:add` at the
  same instant; every viewer watches `stock:update` of the variant.
  With --rooms, process 0 also holds the small rooms: in each, the first --room-chatters viewers chat at
  --room-rate messages/s in all, and the room's delivery is accounted apart (seqs are per room).
* reconnect: the audience's chat, and at 30 % of --duration a --drop share of the other viewers lose their
  socket, wait --pause seconds and join again with `{last_seq, epoch}`.
"""
from __future__ import annotations

import asyncio
import bisect
import time

from loadtests.stats import Hist, merge_dumps

REACTION_KINDS = ("heart", "fire", "clap", "wow", "laugh")


async def sleep_until(wall: float) -> None:
    delay = wall - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


async def wait_acks(gen, deadline: float) -> None:
    """Until no viewer waits for an ack (expired acks are dropped by the tick) or the wall deadline."""
    while time.time() < deadline and any(v is not None and v.acks for v in gen.all_viewers()):
        await asyncio.sleep(0.05)


class Scenario:
    name = ""
    watch_stock = False
    delivery = False  # chat is sent and its delivery accounted

    def always_tracked(self, gen) -> list[int]:
        return []

    async def run(self, gen, go: dict) -> dict:
        await sleep_until(go["until"])
        return {}

    async def settle(self, gen, data: dict) -> None:
        """After every process has run: let what was sent arrive."""
        await gen.drain(gen.plan.drain)

    def extra(self, gen) -> dict:
        return {}

    def summarize(self, report: dict, results: list[dict], args, go: dict) -> dict:
        """The scenario's sections of the report, from every process's result (`go`: what the parent sent)."""
        return {}


class Audience(Scenario):
    name = "audience"
    delivery = True

    async def run(self, gen, go: dict) -> dict:
        plan = gen.plan
        gen.chat_seqs = []
        tasks = []
        chatters = [v for v in gen.viewers[:plan.actors] if v is not None and v.alive]
        if chatters and plan.rate > 0:
            interval = len(chatters) / plan.rate  # each chatter's period
            for k, v in enumerate(chatters):
                first = go["at"] + interval * (k + gen.rng.random()) / len(chatters)
                tasks.append(self.chatter(gen, v, first, go["until"], interval))
        for room in gen.rooms:
            talkers = [v for v in room.viewers[:room.room.actors] if v is not None and v.alive]
            if talkers and room.room.rate > 0:
                interval = len(talkers) / room.room.rate
                for k, v in enumerate(talkers):
                    first = go["at"] + interval * (k + gen.rng.random()) / len(talkers)
                    tasks.append(self.chatter(gen, v, first, go["until"], interval, room.chat_seqs))
        reactors = [v for v in gen.viewers if v is not None and v.alive and gen.tokens[v.index]]
        if reactors and plan.reactions > 0:
            tasks.append(self.reactor(gen, reactors, go["at"], go["until"], 1.0 / plan.reactions))
        tasks.extend(self.more(gen, go))
        tasks.append(sleep_until(go["until"]))  # a process with no chatter (a bulk one) runs through the chat too
        await asyncio.gather(*tasks)
        await wait_acks(gen, time.time() + plan.ack_timeout)
        return {"chat_seqs": gen.chat_seqs, "room_seqs": {room.slug: room.chat_seqs for room in gen.rooms}}

    def more(self, gen, go: dict) -> list:
        return []

    async def settle(self, gen, data: dict) -> None:
        """Wait until every connected viewer has every message acked in the run (the parent sends the seqs of
        all processes' chatters), at most --drain seconds; without them, until the chat goes quiet."""
        seqs = data.get("chat_seqs")
        if seqs is None:
            return await gen.drain(gen.plan.drain)
        waits = [(seqs, gen.joined_viewers())]
        for room in gen.rooms:
            waits.append((data.get("room_seqs", {}).get(room.slug, []),
                          [v for v in room.viewers if v is not None and v.join_seq is not None and v.alive]))
        deadline = time.monotonic() + gen.plan.drain
        while time.monotonic() < deadline:
            if all(v.received >= len(s) - bisect.bisect_right(s, v.join_seq) for s, vs in waits for v in vs):
                return
            await asyncio.sleep(0.05)

    @staticmethod
    async def chatter(gen, v, first: float, until: float, interval: float, seqs: list | None = None) -> None:
        """Viewer v chats in its room every `interval` s; the seqs of the acked messages go to `seqs` (default
        the main room's)."""
        seqs = gen.chat_seqs if seqs is None else seqs

        def acked(ack) -> None:
            if isinstance(ack, dict) and ack.get("ok"):
                seqs.append(ack["message"]["seq"])

        n, t = 0, first
        while t < until and v.alive:
            await sleep_until(t)
            n += 1
            v.emit("chat:send", {"stream_id": v.stream, "text": f"t={time.time():.6f} {gen.plan.run_id}:"
                                                                f"{gen.plan.proc}.{v.index}.{n}"}, acked)
            t += interval

    @staticmethod
    async def reactor(gen, reactors: list, first: float, until: float, interval: float) -> None:
        n, t = 0, first + interval * gen.rng.random()
        while t < until:
            await sleep_until(t)
            v = reactors[n % len(reactors)]
            if v.alive:
                v.emit("reaction", {"stream_id": gen.stream, "kind": REACTION_KINDS[n % len(REACTION_KINDS)]})
            n += 1
            t += interval

    def summarize(self, report: dict, results: list[dict], args, go: dict) -> dict:
        out = {"delivery": delivery_summary(results)}
        if any(r.get("rooms") for r in results):
            out["rooms"] = rooms_summary(results)
        return out


def rooms_summary(results: list[dict]) -> dict:
    """The small rooms of --rooms, each accounted alone (its own seqs, viewers and latency), and the worst."""
    per_room: dict[str, dict] = {}
    slugs = sorted({slug for r in results for slug in r.get("rooms", {})}, key=_natural)
    for slug in slugs:
        parts = [r["rooms"][slug] for r in results if slug in r.get("rooms", {})]
        d = delivery_summary([{"ran": {"chat_seqs": p["chat_seqs"]}, "accounting": p["accounting"]} for p in parts])
        merged = merge_dumps([p["stats"] for p in parts])
        lat = merged["delivery"].summary()
        per_room[slug] = {"expected": d["deliveries_expected"], "delivered": d["deliveries"],
                          "delivered_ratio": d["delivered_ratio"],
                          "p50_ms": lat["p50"], "p99_ms": lat["p99"], "max_ms": lat["max"], "latency_samples": lat["n"],
                          "sent": d["messages_sent"], "joined": merged["joined"], "missing": d["missing"],
                          "duplicates": d["duplicates"], "errors": merged["errors"], "refused": merged["refused"]}
    p99s = [r["p99_ms"] for r in per_room.values() if r["p99_ms"] is not None]
    ratios = [r["delivered_ratio"] for r in per_room.values() if r["delivered_ratio"] is not None]
    return {"count": len(per_room), "worst_p99_ms": max(p99s, default=None),
            "worst_delivery": min(ratios, default=None),
            "expected": sum(r["expected"] for r in per_room.values()),
            "delivered": sum(r["delivered"] for r in per_room.values()),
            "duplicates": sum(r["duplicates"] for r in per_room.values()), "per_room": per_room}


def _natural(slug: str) -> tuple:
    """bench-room-2 before bench-room-10."""
    head = slug.rstrip("0123456789")
    tail = slug[len(head):]
    return (head, int(tail) if tail else -1)


def delivery_summary(results: list[dict]) -> dict:
    """Deliveries against what each viewer should have received: every chat message acknowledged ok whose
    seq is above the viewer's join seq (the join snapshot holds the earlier ones)."""
    seqs = sorted(s for r in results for s in r["ran"].get("chat_seqs", ()))
    total, sent = len(seqs), set(seqs)
    expected = received = missing = excess = dups = tracked = missing_exact = dropped_viewers = 0
    rejoined_missing = rejoined_dups = 0
    for r in results:
        for join_seq, got, alive, got_seqs, viewer_dups, rejoined in r["accounting"]:
            first = bisect.bisect_right(seqs, join_seq)  # the first message sent after this viewer joined
            want = total - first
            expected += want
            received += min(got, want) if got_seqs is None else got
            dups += viewer_dups
            dropped_viewers += not alive
            if got_seqs is None:
                missing += max(0, want - got)
                excess += max(0, got - want)
            else:
                tracked += 1
                got_seqs = set(got_seqs)
                gone = len(set(seqs[first:]) - got_seqs)
                missing_exact += gone
                missing += gone
                if rejoined:
                    rejoined_missing += gone
                    rejoined_dups += viewer_dups
                excess += len(got_seqs - sent)  # chat not sent by this run (someone else chatting)
    return {"messages_sent": total, "deliveries": received, "deliveries_expected": expected,
            "delivered_ratio": round(received / expected, 6) if expected else None,
            "missing": missing, "missing_tracked": missing_exact, "excess": excess, "duplicates": dups,
            "tracked_viewers": tracked, "viewers_lost": dropped_viewers,
            "rejoined_missing": rejoined_missing, "rejoined_duplicates": rejoined_dups}


class JoinStorm(Scenario):
    name = "join-storm"


class FlashSale(Scenario):
    name = "flash-sale"
    watch_stock = True

    async def run(self, gen, go: dict) -> dict:
        plan = gen.plan
        variant = go["variant"]
        gen.variant = variant
        if variant is None:  # no spotlighted product and no --variant: nothing to buy
            return {"buyers": 0, "ok": 0}
        buyers = [v for v in gen.viewers[:plan.actors] if v is not None and v.alive]
        await sleep_until(go["at"])
        fired = time.time()
        for k, v in enumerate(buyers):
            v.emit("cart:add", {"variant_id": variant, "qty": plan.qty, "stream_id": gen.stream,
                                "idempotency_key": f"{plan.run_id}-{plan.proc}-{k}"})
        spread = time.time() - fired
        await wait_acks(gen, time.time() + plan.ack_timeout)
        return {"buyers": len(buyers), "ok": gen.stats.ok.get("cart:add", 0), "fire_spread_ms": round(spread * 1000, 1),
                "fire_late_ms": round((fired - go["at"]) * 1000, 1)}

    async def settle(self, gen, data: dict) -> None:
        if data.get("stock_zero"):  # enough was sold: wait until every viewer has seen the stock reach 0
            await self.wait_zero(gen, gen.plan.drain)
        else:
            await super().settle(gen, data)

    async def wait_zero(self, gen, limit: float) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if all(v.stock.get(gen.variant) == 0 for v in gen.joined_viewers()):
                return
            await asyncio.sleep(0.05)

    def extra(self, gen) -> dict:
        variant = getattr(gen, "variant", None)
        watchers = gen.joined_viewers()
        seen = [v.stock[variant] for v in watchers if variant in v.stock]
        return {"watchers": len(watchers), "saw_zero": sum(1 for a in seen if a == 0),
                "lowest_seen": min(seen) if seen else None}

    def summarize(self, report: dict, results: list[dict], args, go: dict) -> dict:
        ok = report["events"]["ok"].get("cart:add", 0)
        codes = dict(report["events"]["refused"].get("cart:add", {}))
        extras = [r["extra"] for r in results]
        initial = go.get("available")
        buyers = sum(r["ran"].get("buyers", 0) for r in results)
        watchers = sum(e["watchers"] for e in extras)
        saw_zero = sum(e["saw_zero"] for e in extras)
        lows = [e["lowest_seen"] for e in extras if e["lowest_seen"] is not None]
        units = ok * args.qty
        return {"flash_sale": {"variant_id": go.get("variant"), "initial_available": initial,
                "buyers": buyers, "qty": args.qty,
                "succeeded": ok, "units_added": units, "out_of_stock": codes.pop("out_of_stock", 0),
                "other_errors": codes,
                "unanswered": report["errors"].get("ack_timeout:cart:add", 0),
                "oversold": initial is not None and units > initial,
                "expected_successes": None if initial is None else min(initial // args.qty, buyers),
                "stock_zero_seen_by": saw_zero, "watchers": watchers,
                "lowest_available_seen": min(lows) if lows else None,
                "fire_spread_ms": max((r["ran"].get("fire_spread_ms", 0) for r in results), default=None),
                "fire_late_ms": max((r["ran"].get("fire_late_ms", 0) for r in results), default=None)}}


class Reconnect(Audience):
    name = "reconnect"

    def always_tracked(self, gen) -> list[int]:
        plan = gen.plan
        listeners = list(range(plan.actors, plan.viewers))
        gen.droppers = sorted(gen.rng.sample(listeners, round(plan.drop * len(listeners))))
        gen.rejoins = []
        return gen.droppers

    def more(self, gen, go: dict) -> list:
        return [self.drop_and_rejoin(gen, go["drop_at"])]

    async def drop_and_rejoin(self, gen, at: float) -> None:
        await sleep_until(at)
        victims = [gen.viewers[i] for i in gen.droppers if gen.viewers[i] is not None and gen.viewers[i].alive]
        for v in victims:
            v.drop()
        gen.dropped = len(victims)
        await asyncio.sleep(gen.plan.pause)

        async def again(v):
            new = await gen.open_one(v.index, track=True, watch=False, prev=v)
            if new is not None:
                gen.viewers[v.index] = new
                gen.rejoins.append(new)

        await asyncio.gather(*(again(v) for v in victims))

    def extra(self, gen) -> dict:
        h = Hist()
        for v in gen.rejoins:
            if v.rejoin_ms is not None:
                h.add(v.rejoin_ms)
        return {"dropped": getattr(gen, "dropped", 0),
                "rejoined": sum(1 for v in gen.rejoins if v.recovered is not None),
                "recovered": sum(1 for v in gen.rejoins if v.recovered), "rejoin": h.dump(),
                "not_recovered": sum(1 for v in gen.rejoins if v.recovered is False)}

    def summarize(self, report: dict, results: list[dict], args, go: dict) -> dict:
        delivery = delivery_summary(results)
        h = Hist()
        for r in results:
            h.merge(Hist.load(r["extra"]["rejoin"]))
        extras = [r["extra"] for r in results]
        out = {k: sum(e[k] for e in extras) for k in ("dropped", "rejoined", "recovered", "not_recovered")}
        out.update(missing_after_rejoin=delivery.pop("rejoined_missing"),
                   duplicates_after_rejoin=delivery.pop("rejoined_duplicates"), rejoin_ms=h.summary())
        return {"delivery": delivery, "reconnect": out}


SCENARIOS = {s.name: s for s in (Audience, JoinStorm, FlashSale, Reconnect)}
