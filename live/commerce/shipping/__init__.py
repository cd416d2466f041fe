"""Fulfillment: carriers (Shippo, the sandbox carrier), rates at checkout, labels bought by jobs, carrier tracking,
the shipment and order status history, and returns. docs/shipping.md."""
