"""Database access: the pool, the migrator, the embedded server and the repositories (queries)."""
from db.pool import Database

__all__ = ["Database"]
