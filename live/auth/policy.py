"""Who may do what: each rule written once, used by the REST route rules (live/http/api.py `auth=`, `roles=`),
the socket handlers and the services.

A predicate (`owns`, `moderates`) answers where a caller only needs to know; a check raises the registry's
error (live/errors.py): `unauthorized` (401) when nobody is signed in, `forbidden` (403) otherwise. Row-level
security in PostgreSQL stays the last word on what a query sees (docs/design.md); these rules decide what
the server agrees to do and say why it refuses."""
from __future__ import annotations

from typing import Any, Protocol

from live.auth.principal import Principal
from live.errors import forbidden, unauthorized

SELLERS = ("seller", "admin")  # who may sell: the `roles=` of the seller routes


class Moderated(Protocol):
    """A stream as the room layer holds it (live/rooms/state.py StreamState)."""

    seller_user_id: str | None
    moderators: set[str]


def signed_in(principal: Principal, refusal: str = "authentication required") -> Principal:
    if not principal.authenticated:
        raise unauthorized(refusal)
    return principal


def has_role(principal: Principal, roles: tuple[str, ...], refusal: str | None = None) -> None:
    if principal.role not in roles:
        raise forbidden(refusal or f"requires role {' or '.join(roles)}")


def admin(principal: Principal, refusal: str | None = None) -> None:
    has_role(principal, ("admin",), refusal)


def owns(principal: Principal, owner: str | None, *, shop: str | None = None) -> bool:
    """An admin, or the owner: `owner` is the owning user's id, or with `shop` (the caller's own seller id) the
    owning seller's id (what a shop owns: coupons)."""
    if principal.user_id is None:
        return False
    return principal.is_admin or owner == (principal.user_id if shop is None else shop)


def owner_or_admin(principal: Principal, owner: str | None, refusal: str, *, shop: str | None = None) -> None:
    if not owns(principal, owner, shop=shop):
        raise forbidden(refusal)


def stream_seller(principal: Principal, seller_user_id: str | None,
                  refusal: str = "only the stream's seller can do that") -> None:
    """The stream's seller (or an admin): starts and ends it, spotlights, appoints moderators, edits it."""
    owner_or_admin(principal, seller_user_id, refusal)


def moderates(principal: Principal, stream: Moderated) -> bool:
    """The stream's seller, an admin, or one of the stream's moderators."""
    return owns(principal, stream.seller_user_id) or (principal.user_id is not None
                                                      and principal.user_id in stream.moderators)


def stream_moderator(principal: Principal, stream: Moderated) -> None:
    if not moderates(principal, stream):
        raise forbidden("only the seller, an admin or a moderator of this stream can do that")


def has_shop(seller: Any) -> Any:
    """The caller's seller profile (a `sellers` row), which selling needs."""
    if seller is None:
        raise forbidden("create your seller profile first")
    return seller
