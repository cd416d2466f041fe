"""The process plumbing of the benchmarks that start their own servers (`notify`, `fulfillment`): child processes
pinned to CPUs with a log file each, the embedded PostgreSQL, free ports, one SQL statement at a time, and the
report files."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from loadtests.bench import pinned

ROOT = Path(__file__).resolve().parent.parent


def cpus(text: str | None) -> set[int] | None:
    """A taskset CPU list ("0", "0,1", "0-1") as a set; None for "" (no pinning)."""
    if not text:
        return None
    out: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


@contextmanager
def on_cpus(text: str | None) -> Iterator[None]:
    """This process pinned to the CPUs of `text` (no change for ""), as it was again afterwards: what it starts
    meanwhile keeps those CPUs."""
    mine, wanted = os.sched_getaffinity(0), cpus(text)
    if wanted:
        os.sched_setaffinity(0, wanted)
    try:
        yield
    finally:
        os.sched_setaffinity(0, mine)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"process exited with status {proc.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port} after {seconds:.0f} s")


async def sql(dsn: str, statement: str, *, value: bool = False):
    """One statement on a connection of its own: its first value with value=True, else its status."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return await (conn.fetchval(statement) if value else conn.execute(statement))
    finally:
        await conn.close()


class Processes:
    """A run's children (`spawn`ed, each logging to OUT/<name>.log) and its database: --database-url (`dsn`) or
    the embedded PostgreSQL under OUT/data/pgdata (`pg`)."""

    def __init__(self, out: str | Path, dsn: str | None):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.procs: list[subprocess.Popen] = []
        self.pg = None
        self.dsn = dsn

    def spawn(self, name: str, cmd: list[str], cpus_: str | None, env: dict | None = None) -> subprocess.Popen:
        proc = subprocess.Popen(pinned(cpus_, cmd), cwd=ROOT, env={**os.environ, **(env or {})},
                                stdout=subprocess.DEVNULL, stderr=open(self.out / f"{name}.log", "w"))
        self.procs.append(proc)
        return proc

    def migrate(self, server_cpus: str | None) -> None:
        """The embedded PostgreSQL unless there is a dsn (started with this process pinned to `server_cpus`, which
        its processes keep), migrated."""
        from db.migrate import migrate

        if self.dsn is None:
            from db.embedded import EmbeddedPostgres

            with on_cpus(server_cpus):
                self.pg = EmbeddedPostgres(self.out / "data" / "pgdata")
                self.pg.create_database("live")
            self.dsn = self.pg.uri("live")
        asyncio.run(migrate(self.dsn))

    def postmaster(self) -> int | None:
        """The embedded PostgreSQL's pid (its backends are its children), None for --database-url."""
        if self.pg is None:
            return None
        return int((self.out / "data" / "pgdata" / "postmaster.pid").read_text().split()[0])

    def stop(self, proc: subprocess.Popen, grace: float = 30) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self, *, newest_first: bool = False, grace: float = 10) -> None:
        for proc in reversed(self.procs) if newest_first else self.procs:
            self.stop(proc, grace=grace)

    def stop_postgres(self) -> None:
        if self.pg is not None:
            self.pg.stop()


def write_report(out: str | Path, name: str, report: dict, summary: Callable[[dict], str],
                 rows: Callable[[dict], str]) -> int:
    """OUT/<name>.json (the report) and OUT/<name>.txt (its summary and rows, also printed); the exit status: 0 when
    the report passed, 1 otherwise."""
    out = Path(out)
    (out / f"{name}.json").write_text(json.dumps(report, indent=2, default=str))
    text = summary(report) + "\n\n" + rows(report)
    (out / f"{name}.txt").write_text(text + "\n")
    print(text)
    return 0 if report["passed"] else 1
