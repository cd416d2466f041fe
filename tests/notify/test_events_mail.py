"""With the mail channel registered (the container's Mailer), an order paid sends exactly one confirmation email
to the buyer and one new-order email to the seller through a real SMTP server (aiosmtpd with AUTH), whatever is
replayed: the payment event again, the deliver job again."""
from __future__ import annotations

import asyncio

from live.auth.principal import SYSTEM
from tests.commerce.harness import Shop, make_client
from tests.notify.notes import all_delivered, kinds
from tests.shipping.labels_harness import checked_out, pay


def plain(message) -> str:
    """The text/plain part of a received message, decoded."""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text/plain part")


async def set_email(shop, user_id: str, email: str) -> None:
    async with shop.services.db.tx(SYSTEM) as conn:
        await conn.execute("UPDATE users SET email = $2 WHERE id = $1::uuid", user_id, email)


async def test_an_order_paid_sends_one_confirmation_and_one_new_order_email(tmp_path, dsn, aiohttp_client,
                                                                            mail_server):
    shop = Shop(await make_client(tmp_path, dsn, aiohttp_client, smtp_url=mail_server.url))
    buyer, seller = await shop.user(), await shop.seller()
    await set_email(shop, buyer.id, "ada@example.com")
    await set_email(shop, seller.id, "shop@example.com")
    _, _, out = await checked_out(shop, buyer=buyer, seller=seller)
    [order] = out["orders"]
    assert await pay(shop, out) == "applied"
    [confirmation] = await mail_server.wait(1, address="ada@example.com")
    [new_order] = await mail_server.wait(1, address="shop@example.com")
    assert order["number"] in str(confirmation["Subject"]) + plain(confirmation)
    assert f"/account/orders/{order['id']}" in plain(confirmation)
    assert f"/studio/orders/{order['id']}" in plain(new_order)
    assert "List-Unsubscribe" not in confirmation  # transactional: no unsubscribe
    # replays: the payment event again, the deliver job of the event again
    assert await pay(shop, out) == "ignored"
    await shop.services.notices.deliverer.deliver({"key": f"order.confirmed:{order['id']}:1"})
    await all_delivered(shop.services)
    await asyncio.sleep(0.5)  # time for a second mail to arrive, if one had been queued
    assert len(mail_server.to("ada@example.com")) == 1 and len(mail_server.to("shop@example.com")) == 1
    assert await kinds(shop.services, buyer.id) == ["order.confirmed"]
