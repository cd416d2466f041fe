"""Where the database is: DATABASE_URL, or an embedded PostgreSQL with its data under the data dir."""
from __future__ import annotations

from db.embedded import EmbeddedPostgres
from live.config import Settings


def database_dsn(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    if settings.database_url:
        return settings.database_url, None
    pg = EmbeddedPostgres(settings.data_dir.resolve() / "pgdata")
    pg.create_database("live")
    return pg.uri("live"), pg
