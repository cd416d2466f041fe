"""Helpers of the domain-event notification tests: a user's stored notifications, and waiting for them."""
from __future__ import annotations

from live.auth.principal import SYSTEM
from tests.helpers import until


async def notes(services, user_id: str) -> list[dict]:
    """The user's notifications, oldest first: kind, key, data, delivered."""
    async with services.db.tx(SYSTEM) as conn:
        rows = await conn.fetch("SELECT kind, key, data, delivered_at IS NOT NULL AS delivered FROM notifications "
                                "WHERE user_id = $1::uuid ORDER BY id", user_id)
    return [dict(r) for r in rows]


async def kinds(services, user_id: str) -> list[str]:
    return [n["kind"] for n in await notes(services, user_id)]


async def wait_kinds(services, user_id: str, *wanted: str, timeout: float = 15.0) -> list[dict]:
    """Wait until the user has a notification of each wanted kind; their notifications then."""
    async def there() -> bool:
        have = await kinds(services, user_id)
        return all(k in have for k in wanted)
    await until(there, timeout, what=f"notifications {wanted}")
    return await notes(services, user_id)


async def all_delivered(services, timeout: float = 15.0) -> None:
    """Every notification's notify.deliver job has run (the app's in-process worker runs them)."""
    async def done() -> bool:
        async with services.db.tx(SYSTEM) as conn:
            return await conn.fetchval("SELECT count(*) FROM notifications WHERE delivered_at IS NULL") == 0
    await until(done, timeout, what="notifications delivered")
