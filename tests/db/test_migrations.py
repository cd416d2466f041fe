"""Migrations: from zero, re-applied, concurrent runs (two real `live migrate` processes), changed files refused."""
from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from db.migrate import MIGRATIONS_DIR, MigrationError, discover, migrate
from tests.helpers import owner_connection

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted(p.name for p in MIGRATIONS_DIR.glob("*.sql"))


def expected_names(directory: Path = MIGRATIONS_DIR) -> list[str]:
    return [f"{m.version:04d}_{m.name}" for m in discover(directory)]


async def recorded(dsn: str) -> list[tuple[int, str]]:
    async with owner_connection(dsn) as conn:
        rows = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
    return [(r["version"], r["name"]) for r in rows]


async def table_exists(dsn: str, name: str) -> bool:
    async with owner_connection(dsn) as conn:
        return await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"public.{name}")


def test_migration_directory_is_not_empty():
    assert FILES, "no migrations found"
    assert len(expected_names()) == len(FILES)


async def test_from_zero_applies_everything_and_records_each_file(empty_dsn):
    assert not await table_exists(empty_dsn, "users")
    applied = await migrate(empty_dsn)
    assert applied == expected_names()
    rows = await recorded(empty_dsn)
    assert len(rows) == len(FILES)
    assert [f"{v:04d}_{n}.sql" for v, n in rows] == FILES
    for table in ("users", "sellers", "products", "livestreams", "carts", "orders", "addresses"):
        assert await table_exists(empty_dsn, table), table


async def test_second_run_applies_nothing(empty_dsn):
    assert await migrate(empty_dsn) == expected_names()
    assert await migrate(empty_dsn) == []
    assert len(await recorded(empty_dsn)) == len(FILES)


async def test_concurrent_in_process_runs_apply_each_migration_once(empty_dsn):
    first, second = await asyncio.gather(migrate(empty_dsn), migrate(empty_dsn))
    # one run did all the work, the other found nothing left to do
    assert sorted([first, second], key=len) == [[], expected_names()]
    assert len(await recorded(empty_dsn)) == len(FILES)


def test_two_concurrent_live_migrate_processes(empty_dsn, tmp_path):
    env = {**os.environ, "DATABASE_URL": empty_dsn, "LIVE_ENV": "test", "LOG_LEVEL": "warning",
           "JWT_SECRET": "cli-secret-" + "y" * 40, "LIVE_DATA_DIR": str(tmp_path / "data")}
    env.pop("LIVE_MIGRATIONS_DIR", None)
    procs = [subprocess.Popen([sys.executable, "-m", "live", "migrate"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs.append(out.strip())
    applied = [o for o in outputs if o.startswith("applied: ")]
    assert len(applied) == 1, outputs
    assert applied[0] == "applied: " + ", ".join(expected_names())
    assert [o for o in outputs if o not in applied] == ["database is up to date"]
    rows = asyncio.run(recorded(empty_dsn))
    assert len(rows) == len(FILES)
    assert len({v for v, _ in rows}) == len(FILES)


@pytest.fixture
def migrations_copy(tmp_path) -> Path:
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, directory)
    return directory


async def test_changed_migration_is_refused(empty_dsn, migrations_copy):
    assert await migrate(empty_dsn, directory=migrations_copy) == expected_names()
    victim = sorted(migrations_copy.glob("*.sql"))[1]
    original = victim.read_text()
    victim.write_text(original + "\n-- edited after it was applied\n")
    with pytest.raises(MigrationError, match=victim.name.removesuffix(".sql")):
        await migrate(empty_dsn, directory=migrations_copy)
    # the lock was released and an unchanged directory is fine again
    victim.write_text(original)
    assert await migrate(empty_dsn, directory=migrations_copy) == []


async def test_new_migration_is_applied_alone(empty_dsn, migrations_copy):
    await migrate(empty_dsn, directory=migrations_copy)
    (migrations_copy / "0099_extra.sql").write_text("CREATE TABLE extra_thing (id int PRIMARY KEY);\n")
    assert await migrate(empty_dsn, directory=migrations_copy) == ["0099_extra"]
    assert await table_exists(empty_dsn, "extra_thing")
    assert (99, "extra") in await recorded(empty_dsn)


async def test_failing_migration_is_rolled_back_and_not_recorded(empty_dsn, migrations_copy):
    await migrate(empty_dsn, directory=migrations_copy)
    (migrations_copy / "0099_broken.sql").write_text("CREATE TABLE half_done (id int);\nSELECT 1 / 0;\n")
    with pytest.raises(asyncpg.DivisionByZeroError):
        await migrate(empty_dsn, directory=migrations_copy)
    assert not await table_exists(empty_dsn, "half_done")
    assert 99 not in [v for v, _ in await recorded(empty_dsn)]


def test_badly_named_migration_file_is_refused(migrations_copy):
    (migrations_copy / "7_oops.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="bad migration file name"):
        discover(migrations_copy)


def test_duplicate_version_is_refused(migrations_copy):
    first = sorted(migrations_copy.glob("*.sql"))[0]
    (migrations_copy / (first.name[:4] + "_duplicate.sql")).write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="share a version"):
        discover(migrations_copy)
