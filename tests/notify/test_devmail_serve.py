"""`live serve` as a real process without SMTP_URL: the development mailbox starts with it, and a sign-in code
requested over HTTP is readable at /dev/mailbox and in its JSON; with LIVE_ENV=production nothing is started and
every /dev/ route answers 404."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.helpers import SECRET

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: dict | None = None) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def wait_until(pred, timeout: float, what: str):
    end = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"{what} not reached in {timeout} s")
        time.sleep(0.1)


class Served:
    def __init__(self, tmp_path: Path, dsn: str, *args: str, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = tmp_path / "data"
        self.log = tmp_path / "serve.log"
        environ = {k: v for k, v in os.environ.items() if k not in ("SMTP_URL", "REDIS_URL", "SUPPORT_EMAIL")}
        environ.update({"DATABASE_URL": dsn, "LIVE_ENV": "test", "JWT_SECRET": SECRET, "LOG_LEVEL": "warning",
                        "SEED_DEMO": "false", "LIVE_DATA_DIR": str(self.data), **env})
        self.proc = subprocess.Popen([sys.executable, "-m", "live", "serve", "--port", str(self.port), *args],
                                     cwd=ROOT,
                                     env=environ, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "wb"))
        try:
            wait_until(lambda: self.proc.poll() is not None or http("GET", self.url + "/readyz")[0] == 200, 60,
                       "server ready")
        except AssertionError:
            self.stop()
            raise
        assert self.proc.poll() is None, self.log.read_text()[-3000:]

    def stderr(self) -> str:
        return self.log.read_text()

    def listening(self, children: bool = True) -> set[int]:
        """The TCP ports the server process (and its children: workers, an embedded Redis) listen on."""
        main = psutil.Process(self.proc.pid)
        ports = set()
        for proc in [main, *(main.children(recursive=True) if children else [])]:
            ports |= {c.laddr.port for c in proc.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}
        return ports

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def served(tmp_path, dsn):
    started: list[Served] = []

    def start(*args: str, **env: str) -> Served:
        started.append(Served(tmp_path, dsn, *args, **env))
        return started[-1]

    yield start
    for s in started:
        s.stop()


@pytest.mark.parametrize("workers", [1, 2])
def test_make_run_without_smtp_shows_the_sign_in_code_in_the_mailbox(served, workers):
    srv = served("--workers", str(workers))
    [line] = [x for x in srv.stderr().splitlines() if "development mailbox" in x]  # one, whatever the workers
    assert f"{srv.url}/dev/mailbox" in line
    smtp_port = int(re.search(r"smtp://127\.0\.0\.1:(\d+)", line).group(1))
    assert smtp_port in srv.listening(children=False)  # in the process that started the database and Redis
    if workers == 1:
        assert srv.listening() == {srv.port, smtp_port}

    status, _ = http("POST", srv.url + "/api/v1/auth/email/start", {"email": "newbie@example.org"})
    assert status == 202

    def arrived():
        status, body = http("GET", srv.url + "/api/v1/dev/mailbox?to=newbie@example.org")
        return status == 200 and json.loads(body)["items"]
    [item] = wait_until(arrived, 30, "the sign-in code in the mailbox")
    code = re.search(r"\b(\d{6})\b", item["text"]).group(1)

    status, page = http("GET", srv.url + "/dev/mailbox")
    assert status == 200 and "newbie@example.org" in page and item["id"] in page
    status, page = http("GET", srv.url + item["url"])
    assert status == 200 and code in page and "<iframe" in page
    assert (srv.data / "mailbox" / f"{item['id']}.eml").exists()

    status, body = http("POST", srv.url + "/api/v1/auth/email/verify", {"email": "newbie@example.org", "code": code})
    assert status == 200 and json.loads(body)["token"]


def test_production_starts_no_mailbox_and_refuses_dev_routes(served):
    srv = served(LIVE_ENV="production", LIVEKIT_API_KEY="prod-key", LIVEKIT_API_SECRET="prod-secret-" + "y" * 30)
    assert "development mailbox" not in srv.stderr()
    assert srv.listening() == {srv.port}  # no SMTP port opened
    for path in ("/dev/mailbox", "/dev/mailbox/" + "a" * 32, "/api/v1/dev/mailbox"):
        status, body = http("GET", srv.url + path)
        assert status == 404 and json.loads(body)["error"]["code"] == "not_found", (path, body)
    status, _ = http("POST", srv.url + "/api/v1/auth/email/start", {"email": "prod@example.org"})
    assert status == 202
    assert not (srv.data / "mailbox").exists()


def test_live_worker_without_smtp_delivers_to_the_mailbox(tmp_path, dsn):
    """`live worker` (jobs only) starts the mailbox too, and its email.send jobs deliver there."""
    import asyncio

    from live.notify.devmail import Mailbox
    from live.notify.mail import enqueue
    from tests.helpers import owner_connection

    async def queue() -> None:
        async with owner_connection(dsn) as conn:
            async with conn.transaction():
                await enqueue(conn, "worker@example.org", "From the worker", "hello from live worker")

    log = tmp_path / "worker.log"
    environ = {k: v for k, v in os.environ.items() if k not in ("SMTP_URL", "REDIS_URL")}
    environ.update({"DATABASE_URL": dsn, "LIVE_ENV": "test", "JWT_SECRET": SECRET, "LOG_LEVEL": "warning",
                    "LIVE_DATA_DIR": str(tmp_path / "data")})
    proc = subprocess.Popen([sys.executable, "-m", "live", "worker"], cwd=ROOT, env=environ,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(log, "wb"))
    try:
        wait_until(lambda: proc.poll() is not None or "development mailbox" in log.read_text(), 60,
                   "the worker's mailbox line")
        assert proc.poll() is None, log.read_text()[-3000:]
        asyncio.run(queue())
        box = Mailbox(tmp_path / "data" / "mailbox")
        [item] = wait_until(box.list, 30, "the worker's mail in the mailbox")
        assert item["subject"] == "From the worker" and "hello from live worker" in item["text"]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
