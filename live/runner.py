"""The process runner: a worker serves the app through the front door (`run_worker` -> `run` -> `serve`),
`supervise` keeps N workers alive (`live serve --workers N`), and `run_jobs` is `live worker` (jobs only). The
front door itself (the protocol, its limits, the runner class that installs it) is live/rooms/frontdoor.py."""
from __future__ import annotations

import asyncio
import gc
import multiprocessing
import resource
import signal
from typing import Any, Callable

from aiohttp import web

from live.appkeys import GATEWAY
from live.config import Settings
from live.logging import get_logger, setup_logging
from live.rooms.frontdoor import FrontDoorRunner

gc_log = get_logger("live.gc")
runner_log = get_logger("live.runner")
NR_OPEN_FALLBACK = 1 << 20  # Linux's default fs.nr_open: the most a soft limit may be when the hard one is unlimited


def raise_nofile() -> tuple[int, int, int]:
    """Raise RLIMIT_NOFILE's soft limit to the hard one, so a worker can hold as many sockets as the system lets
    it (every viewer is a file descriptor: 20,000 viewers need 20,000 and some). Shells and service managers
    often start processes with a soft limit of 1,024 under a much higher hard limit; past the soft limit, accept()
    fails with EMFILE and new viewers wait in the listen queue. Returns (soft before, soft now, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:  # Linux refuses a soft limit above fs.nr_open
        try:
            with open("/proc/sys/fs/nr_open") as f:
                target = int(f.read())
        except (OSError, ValueError):
            target = NR_OPEN_FALLBACK
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (OSError, ValueError) as exc:
            runner_log.warning("nofile_not_raised", soft=soft, hard=hard, error=str(exc))
            return soft, soft, hard
        return soft, target, hard
    return soft, soft, hard


def run_worker(settings: Settings, dsn: str, reuse_port: bool, migrate_first: bool,
               own_port: int | None = None) -> None:
    import socket

    import uvloop

    from live.app import create_app

    setup_logging(settings.log_level)
    before, soft, hard = raise_nofile()
    runner_log.info("nofile_limit", soft_before=before, soft=soft, hard=hard)
    uvloop.install()
    app = create_app(settings, dsn, run_migrations=migrate_first)
    sock = None
    if own_port is not None:  # this worker alone also listens here (per-worker health checks, tests)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((settings.host, own_port))
    run(app, host=settings.host, port=settings.port, reuse_port=reuse_port, sock=sock, backlog=4096,
        shutdown_timeout=10, keepalive_timeout=settings.http_keepalive_seconds,
        serving=lambda: settle_gc(settings.gc_thresholds))


def run_jobs(settings: Settings, dsn: str) -> None:
    """`live worker`: run the durable jobs only (no HTTP server) until SIGTERM or SIGINT, which stops picking
    jobs and waits for the running ones (live/jobs/worker.py STOP_GRACE_SECONDS at most)."""
    import uvloop

    setup_logging(settings.log_level)
    uvloop.install()
    asyncio.run(_jobs_main(settings, dsn))


async def _jobs_main(settings: Settings, dsn: str) -> None:
    import os

    from db import Database
    from db.migrate import migrate
    from live.container import Services

    log = get_logger("live.worker")
    await migrate(dsn)
    # the handlers' transactions: at most one per running job, plus a few for what they call
    db = await Database.connect(dsn, min_size=1, max_size=settings.jobs_concurrency + 2)
    services = Services(settings, db)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await services.start_jobs_only()
        log.info("worker_started", pid=os.getpid(), kinds=services.jobs.kinds(),
                 concurrency=settings.jobs_concurrency, heartbeat_seconds=settings.jobs_heartbeat_seconds)
        await stop.wait()
        log.info("worker_stopping", pid=os.getpid())
    finally:
        await services.stop_jobs_only()
        await db.close()
        log.info("worker_stopped", pid=os.getpid())


def supervise(settings: Settings, dsn: str, n: int, port_base: int | None, log) -> None:
    """Run n workers; restart one that dies (kill -9, crash) with a growing delay; on SIGTERM/SIGINT stop them
    all (each shuts down gracefully: its viewers reconnect to the others) and return when they are gone."""
    import time
    from multiprocessing.connection import wait

    ctx = multiprocessing.get_context("spawn")
    procs: dict[int, multiprocessing.Process] = {}
    started: dict[int, float] = {}
    delay = dict.fromkeys(range(n), 1.0)
    due: dict[int, float] = {}  # worker index -> when to restart it
    stopping = False

    def spawn(i: int) -> None:
        own = port_base + i if port_base else None
        p = ctx.Process(target=run_worker, args=(settings, dsn, True, False, own), name=f"live-worker-{i}")
        p.start()
        procs[i], started[i] = p, time.monotonic()

    for i in range(n):
        spawn(i)
    log.info("workers_started", workers=[p.pid for p in procs.values()])

    def stop(signum, _frame):
        nonlocal stopping
        stopping = True
        for p in procs.values():
            if p.is_alive():
                p.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while procs or (due and not stopping):
        if procs:
            wait([p.sentinel for p in procs.values()], timeout=0.5)
        else:
            time.sleep(0.2)
        for i, p in list(procs.items()):
            if p.is_alive():
                continue
            del procs[i]
            if stopping:
                continue
            lived = time.monotonic() - started[i]
            delay[i] = 1.0 if lived > 60 else min(30.0, delay[i] * 2)
            due[i] = time.monotonic() + delay[i]
            log.warning("worker_exited", worker=i, pid=p.pid, exitcode=p.exitcode, restart_in=delay[i])
        if stopping:
            due.clear()
        for i, when in list(due.items()):
            if time.monotonic() >= when:
                del due[i]
                spawn(i)
                log.info("worker_restarted", worker=i, pid=procs[i].pid)


async def serve(app: web.Application, *, host: str, port: int, reuse_port: bool = False, sock=None,
                backlog: int = 4096, shutdown_timeout: float = 10.0, handle_signals: bool = True,
                keepalive_timeout: float = 30.0, serving: Callable[[], None] | None = None) -> None:
    """Run `app` on host:port (and on the bound socket `sock` if given) through the front door until cancelled
    (or SIGINT/SIGTERM, which aiohttp's runner turns into GracefulExit). `serving()` is called once the app has
    started and listens. `keepalive_timeout`: seconds an idle keep-alive HTTP connection is kept."""
    runner = FrontDoorRunner(app, app[GATEWAY].sio.eio, handle_signals=handle_signals, access_log=None,
                             shutdown_timeout=shutdown_timeout, keepalive_timeout=keepalive_timeout)
    await runner.setup()
    try:
        sites = [web.TCPSite(runner, host, port, backlog=backlog, reuse_port=reuse_port or None)]
        if sock is not None:
            sites.append(web.SockSite(runner, sock, backlog=backlog))
        for site in sites:
            await site.start()
        if serving is not None:
            serving()
        while True:
            await asyncio.sleep(3600)
    finally:
        await runner.cleanup()


def run(app: web.Application, **kwargs: Any) -> None:
    """`web.run_app` for the front door: a fresh event loop, Ctrl-C and SIGTERM end it cleanly."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    task = loop.create_task(serve(app, **kwargs))
    try:
        loop.run_until_complete(task)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        if not task.done():
            task.cancel()
            try:
                loop.run_until_complete(task)
            except (asyncio.CancelledError, web.GracefulExit):
                pass
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()


# ---------------------------------------------------------------- the garbage collector's pauses, kept out of bursts
#
# CPython's cyclic collector stops the event loop while it runs and walks every object of the generations it
# collects; on this machine that is ~0.4-0.6 µs per object. A flash sale's 5,000 waiting cart:adds are ~250,000
# live objects (coroutines, tasks, futures, payloads): with Python's thresholds (700, 10, 10) three full
# collections of 100-190 ms fell inside the burst, more than half of the time to the last ack.
#
# When a worker starts serving, `settle_gc()`:
#   * collects once and freezes what exists (modules, the app, the pools: ~100,000 objects that live as long
#     as the process), so no later collection walks them again;
#   * sets the thresholds (GC_THRESHOLDS, default 10000,50,100): a young collection every 10,000 net
#     allocations instead of 700 (most request objects die young, freed by reference counting before one
#     runs); a middle one after 50 young ones, so the objects of a burst that outlive a young collection are
#     usually freed before a middle collection walks them; a full one after 100 middle ones (and, as always
#     in CPython, only once a quarter of the old objects are new). Measured (docs/benchmarks.md): flash-sale
#     p99 ack 600 ms with the freeze alone, ~500 ms with 10000,20,100, 300-350 ms with 10000,50,100; the
#     10,000-viewer audience and join storm are unchanged (p99 within run-to-run noise, 3.2 KB per connection).
# Cyclic garbage waits longer to be freed. GC_THRESHOLDS=default keeps Python's thresholds (the freeze still
# happens).


def settle_gc(thresholds: tuple[int, int, int] | None) -> None:
    gc.collect()
    gc.freeze()
    if thresholds is not None:
        gc.set_threshold(*thresholds)
    gc_log.info("gc_settled", frozen=gc.get_freeze_count(), thresholds=list(gc.get_threshold()))
