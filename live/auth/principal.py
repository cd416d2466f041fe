"""Who is calling. Passed to services and to Database.tx so RLS sees the caller."""
from __future__ import annotations

from dataclasses import dataclass

ROLES = ("customer", "seller", "admin")


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str | None
    role: str  # anon | customer | seller | admin | system
    name: str = ""

    @property
    def authenticated(self) -> bool:
        return self.user_id is not None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


ANONYMOUS = Principal(None, "anon", "anonymous")
SYSTEM = Principal(None, "system", "system")
