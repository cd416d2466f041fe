"""Commerce: catalog, inventory, cart, coupons, wishlist, checkout, orders, payments, analytics."""
