"""0026_contact on a database that already has contact messages: the old statuses 'replied' and 'archived' of
0001 become 'answered' and 'read' (the old check constraint is dropped before the rows are rewritten)."""
from __future__ import annotations

import shutil

from db.migrate import MIGRATIONS_DIR, migrate
from tests.helpers import owner_connection


async def test_0026_maps_old_statuses_of_existing_rows(empty_dsn, tmp_path):
    directory = tmp_path / "migrations"
    directory.mkdir()
    later = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if int(path.name[:4]) <= 25:
            shutil.copy(path, directory / path.name)
        else:
            later.append(path)
    applied = await migrate(empty_dsn, directory=directory)
    assert applied[-1].startswith("0025_")
    async with owner_connection(empty_dsn) as conn:
        await conn.executemany(
            "INSERT INTO contacts (name, email, message, status) VALUES ($1, 'a@example.com', 'hello', $1)",
            [("new",), ("read",), ("replied",), ("archived",), ("spam",)])
    for path in later:
        shutil.copy(path, directory / path.name)
    applied = await migrate(empty_dsn, directory=directory)
    assert applied[0].startswith("0026_")
    async with owner_connection(empty_dsn) as conn:
        rows = await conn.fetch("SELECT name, status FROM contacts ORDER BY name")
    assert {r["name"]: r["status"] for r in rows} == {
        "archived": "read", "new": "new", "read": "read", "replied": "answered", "spam": "spam"}
