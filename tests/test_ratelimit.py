"""The rate limiter's semantics ("5 per 10 s": a burst of 5, then one every 2 s), in memory and in Redis."""
from __future__ import annotations

import asyncio

import pytest

import live.ratelimit as ratelimit
from live.ratelimit import MemoryRateLimiter, RedisRateLimiter
from live.redis.link import RedisLink


class Clock:
    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(ratelimit, "time", c)
    return c


async def test_burst_then_steady_rate_with_jitter(clock):
    rl = MemoryRateLimiter()
    assert [await rl.hit("k", 5, 10.0) for _ in range(6)] == [True] * 5 + [False]
    clock.now += 1.9
    assert not await rl.hit("k", 5, 10.0)
    clock.now += 0.2  # one token back after 2 s
    assert await rl.hit("k", 5, 10.0)
    assert not await rl.hit("k", 5, 10.0)
    # a viewer chatting every 2 s, early or late by up to 0.3 s, is never refused
    other = [await rl.hit("steady", 5, 10.0)]
    for i in range(60):
        clock.now += 2.0 + (0.3 if i % 2 else -0.3)
        other.append(await rl.hit("steady", 5, 10.0))
    assert all(other)
    # keys are independent
    assert await rl.hit("someone-else", 5, 10.0)


async def test_redis_limiter_allows_the_burst_and_refuses_the_next(redis_server):
    link = RedisLink(redis_server.url, name="t")
    try:
        await link.start()
        rl = RedisRateLimiter(link)
        assert [await rl.hit("chat:x", 5, 10.0) for _ in range(6)] == [True] * 5 + [False]
        assert [await rl.hit("chat:y", 2, 0.2) for _ in range(3)] == [True, True, False]
        await asyncio.sleep(0.15)  # one of the two comes back after 0.1 s
        assert await rl.hit("chat:y", 2, 0.2)
    finally:
        await link.stop()


async def test_wait_says_how_long_until_the_next_action(clock):
    rl = MemoryRateLimiter()
    assert [await rl.wait("w", 2, 10.0) for _ in range(2)] == [0.0, 0.0]
    assert await rl.wait("w", 2, 10.0) == pytest.approx(5.0)  # one every 10 / 2 s
    clock.now += 4.0
    assert await rl.wait("w", 2, 10.0) == pytest.approx(1.0)
    clock.now += 1.0
    assert await rl.wait("w", 2, 10.0) == 0.0


async def test_named_limits_raise_rate_limited_with_retry_after_and_can_be_off(clock):
    limits = ratelimit.Limits(MemoryRateLimiter(), "checkout=1/60, search=off")
    await limits.check("checkout", "user:a")
    with pytest.raises(ratelimit.RateLimited) as exc:
        await limits.check("checkout", "user:a")
    assert exc.value.status == 429 and exc.value.retry_after == 60
    await limits.check("checkout", "user:b")  # keys are independent
    for _ in range(1000):
        await limits.check("search", "ip:x")  # off
    assert limits.table["cart"] == ratelimit.DEFAULT_LIMITS["cart"]


async def test_redis_limiter_wait_matches_memory(redis_server):
    link = RedisLink(redis_server.url, name="t")
    try:
        await link.start()
        rl = RedisRateLimiter(link)
        assert [await rl.wait("rest:x", 2, 10.0) for _ in range(2)] == [0.0, 0.0]
        assert 4.0 <= await rl.wait("rest:x", 2, 10.0) <= 5.0  # 5 s less the moments since the first
    finally:
        await link.stop()
