"""An embedded PostgreSQL (the `pgserver` wheel) for when no DATABASE_URL is given. Data lives under .live/."""
from __future__ import annotations

from pathlib import Path


class EmbeddedPostgres:
    """Starts (or reuses) a real PostgreSQL server whose data directory is `pgdata`."""

    def __init__(self, pgdata: Path, *, stop_on_exit: bool = True):
        import logging
        import warnings

        logging.getLogger("pgserver").setLevel(logging.WARNING)
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            import pgserver  # imported lazily: only the embedded mode needs it

        pgdata.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._server = pgserver.get_server(pgdata, cleanup_mode="stop" if stop_on_exit else None)

    def uri(self, database: str = "postgres") -> str:
        return self._server.get_uri(database)

    def create_database(self, name: str) -> None:
        exists = self._server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}';")
        if "(0 rows)" in exists:
            self._server.psql(f'CREATE DATABASE "{name}";')

    def stop(self) -> None:
        self._server.cleanup()
