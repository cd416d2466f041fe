"""Prometheus metrics of one server process, read at scrape time.

Nothing in the hot paths calls into this module. Two sources:

* `EventCounters` wraps the Socket.IO event handlers once the app has started (every handler registered by
  then, by the gateway or another package through `Gateway.add_events`) and counts each event by the result
  of its ack: `ok`, or the error code of `{ok: false, error: {code}}`. Connections are counted the same way
  (`ok` / `refused`). One dict increment per event.
* `LiveCollector` reads the counters above and the live state (connections, rooms, the hub's
  `stats`: flushes, frames, socket writes, slow-consumer drops) when Prometheus (or a test) scrapes.

Each app has its own `CollectorRegistry` (tests build many apps in one process), with the standard process
collector (CPU seconds, resident memory) added, so a load test can read the server's own CPU from /metrics.
"""
from __future__ import annotations

import functools
import inspect
import os
from collections import Counter
from typing import Any, Callable

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector
from prometheus_client import Counter as PromCounter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from live.appkeys import GATEWAY, SERVICES
from live.rooms.wsconn import OPENED, REFUSALS

# events whose results also get a named counter (the rest are in live_socket_events_total only):
# event -> (family, help); the samples are named family + "_total"
NAMED = {"join": ("live_joins", "Room joins by result (ok, or the error code of the ack)"),
         "chat:send": ("live_chat_messages",
                       "Chat messages by result: ok = accepted and broadcast, else the refusal code"),
         "reaction": ("live_reactions", "Reactions by result (ok, or the error code)"),
         "cart:add": ("live_cart_adds", "Add-to-cart from the live room by result (ok, out_of_stock, ...)")}
_WRAPPED = "__live_metrics__"


def _result(ack: Any) -> str:
    if isinstance(ack, dict) and isinstance(ack.get("ok"), bool):
        if ack["ok"]:
            return "ok"
        error = ack.get("error")
        return str(error.get("code", "error")) if isinstance(error, dict) else "error"
    return "none"  # a handler without an ack shape (python-socketio's own events)


class EventCounters:
    def __init__(self) -> None:
        self.events: Counter[tuple[str, str]] = Counter()
        self.connects: Counter[str] = Counter()

    def instrument(self, sio) -> None:
        """Wrap every handler of the default namespace (idempotent: a wrapped handler is left alone)."""
        handlers = sio.handlers.get("/", {})
        for event, handler in list(handlers.items()):
            if getattr(handler, _WRAPPED, False) or event == "disconnect" or not inspect.iscoroutinefunction(handler):
                continue
            handlers[event] = self._wrap_connect(handler) if event == "connect" else (
                self._wrap("unknown" if event == "*" else event, handler))  # "*": the catch-all handler

    def _wrap(self, event: str, handler: Callable) -> Callable:
        @functools.wraps(handler)
        async def counted(*args):
            ack = await handler(*args)
            self.events[event, _result(ack)] += 1
            return ack
        setattr(counted, _WRAPPED, True)
        return counted

    def _wrap_connect(self, handler: Callable) -> Callable:
        @functools.wraps(handler)
        async def counted(*args):
            try:
                result = await handler(*args)
            except Exception:
                self.connects["refused"] += 1
                raise
            self.connects["refused" if result is False else "ok"] += 1
            return result
        setattr(counted, _WRAPPED, True)
        return counted


class LiveCollector:
    """Builds the live_* families from the app's state at each scrape."""

    def __init__(self, app, counters: EventCounters):
        self.app, self.counters = app, counters

    def collect(self):
        worker = str(os.getpid())
        gateway = self.app.get(GATEWAY)
        services = self.app.get(SERVICES)
        conns = GaugeMetricFamily("live_socket_connections", "Socket.IO connections open now", labels=["worker"])
        conns.add_metric([worker], len(gateway.conns) if gateway is not None else 0)
        yield conns
        connects = CounterMetricFamily("live_socket_connects", "Socket.IO connections by result (ok, refused)",
                                       labels=["worker", "result"])
        for result, n in sorted(self.counters.connects.items()):
            connects.add_metric([worker, result], n)
        yield connects
        events = CounterMetricFamily("live_socket_events", "Socket.IO client events by event and ack result",
                                     labels=["worker", "event", "result"])
        named = {e: CounterMetricFamily(name, doc, labels=["worker", "result"]) for e, (name, doc) in NAMED.items()}
        for (event, result), n in sorted(self.counters.events.items()):
            events.add_metric([worker, event, result], n)
            if event in named:
                named[event].add_metric([worker, result], n)
        yield events
        yield from named.values()
        refusals = CounterMetricFamily(
            "live_door_refusals", "Connections the front door refused or closed, by reason (too_many_connections, "
            "request_timeout, close_<websocket close code>)", labels=["worker", "reason"])
        for reason, n in sorted(REFUSALS.items()):
            refusals.add_metric([worker, reason], n)
        yield refusals
        opened = CounterMetricFamily("live_door_websockets", "Websockets the front door opened, by compression "
                                     "(deflate: permessage-deflate agreed; plain)", labels=["worker", "compression"])
        for kind, n in sorted(OPENED.items()):
            opened.add_metric([worker, kind], n)
        yield opened
        if services is None:
            return
        hub = services.hub
        rooms = GaugeMetricFamily("live_rooms", "Rooms with at least one viewer on this worker", labels=["worker"])
        rooms.add_metric([worker], len(hub.rooms))
        yield rooms
        members = GaugeMetricFamily("live_room_members", "Sockets joined to rooms on this worker", labels=["worker"])
        members.add_metric([worker], sum(len(r.members) for r in hub.rooms.values()))
        yield members
        timers = GaugeMetricFamily("live_hub_timers", "Rooms holding a delivery timer (busy rooms; at most one "
                                   "each, none when idle)", labels=["worker"])
        timers.add_metric([worker], hub.timers())
        yield timers
        for key, name, doc in (
                ("flushes", "live_hub_flushes", "Slice writes by the rooms' sweeps (one buffer to up to 512 sockets)"),
                ("frames", "live_hub_frames", "Events put into slice buffers (each buffer written to its slice)"),
                ("writes", "live_hub_socket_writes", "Socket writes by the hub (one per member per slice write)"),
                ("bytes", "live_hub_bytes", "Bytes handed to sockets by the hub's slice writes"),
                ("write_seconds", "live_hub_write_seconds", "Wall time of the hub's slice writes (seconds)"),
                ("dropped", "live_hub_slow_consumer_drops", "Sockets cut for unsent output over the limit")):
            family = CounterMetricFamily(name, doc, labels=["worker"])
            family.add_metric([worker], hub.stats.get(key, 0))
            yield family
        writer = services.chat_writer
        for count, name, doc in (
                (writer.set_aside, "live_chat_rows_set_aside", "Chat messages PostgreSQL refused to store (set aside)"),
                (writer.dropped, "live_chat_rows_dropped", "Chat messages not stored: the writer's buffer was full")):
            family = CounterMetricFamily(name, doc, labels=["worker"])
            family.add_metric([worker], count)
            yield family
        sweep = getattr(services, "upload_sweep", None)  # the files this process's uploads.sweep runs looked at
        if sweep is not None:
            family = CounterMetricFamily("live_upload_sweep_files", "Uploaded files the uploads.sweep job examined, by "
                                         "outcome: removed (old, named by no row), referenced, young (under 24 h)",
                                         labels=["worker", "outcome"])
            for outcome in ("removed", "referenced", "young"):
                family.add_metric([worker, outcome], sweep.outcomes.get(outcome, 0))
            yield family
        mailer = getattr(services, "outbox", None)  # the mails this worker's email.send jobs handled
        if mailer is not None and hasattr(mailer, "outcomes"):
            family = CounterMetricFamily("live_emails", "Mails by outcome: sent, retry (connection lost or a 4xx: the "
                                         "job tries again), refused (5xx, recipient), unrenderable",
                                         labels=["worker", "outcome"])
            for outcome in ("sent", "retry", "refused", "unrenderable"):
                family.add_metric([worker, outcome], mailer.outcomes.get(outcome, 0))
            yield family
            family = CounterMetricFamily("live_smtp_connections", "SMTP connections this worker opened (one is "
                                         "reused for every mail; closed after SMTP_IDLE_SECONDS idle)",
                                         labels=["worker"])
            family.add_metric([worker], mailer.smtp.connections if mailer.smtp is not None else 0)
            yield family
        push = getattr(services, "push", None)  # Web Push requests this worker's push.send jobs made
        if push is not None:
            family = CounterMetricFamily("live_push_sends", "Web Push requests by outcome: ok, gone (404/410: the "
                                         "subscription dropped), retry (429, 5xx, timeout), refused (other answers)",
                                         labels=["worker", "outcome"])
            for outcome in ("ok", "gone", "retry", "refused"):
                family.add_metric([worker, outcome], push.outcomes.get(outcome, 0))
            yield family


class JobsCollector:
    """The durable job queue's gauges, from the counts the /metrics route read just before (JobsDesk.refresh: one
    bounded query): jobs per kind and state (queued, running, retrying = waiting for a retry after a failure, dead)
    and the age of the oldest due queued job per kind. The queue is shared: every worker reports the same."""

    def __init__(self, app):
        self.app = app

    def collect(self):
        services = self.app.get(SERVICES)
        desk = getattr(services, "jobs_desk", None)
        if desk is None:
            return
        jobs = GaugeMetricFamily("live_jobs", "Durable jobs by kind and state (queued, running, retrying, dead)",
                                 labels=["kind", "state"])
        oldest = GaugeMetricFamily("live_jobs_oldest_due_seconds",
                                   "Seconds since the oldest queued job of a kind became due (0: none waiting)",
                                   labels=["kind"])
        for row in desk.snapshot:
            for state in ("queued", "running", "retrying", "dead"):
                jobs.add_metric([row["kind"], state], row[state])
            oldest.add_metric([row["kind"]], row["oldest_due"])
        yield jobs
        yield oldest


# request latency buckets (seconds): a REST call takes ~1-20 ms on a quiet server; the top buckets catch stalls
HTTP_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HttpMetrics:
    """REST and webhook traffic of this worker. Label values are bounded: route templates (not raw paths),
    methods, status codes, error codes, provider names."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.worker = str(os.getpid())
        self.requests = PromCounter("live_http_requests", "HTTP requests by method, route template and status",
                                    ["worker", "method", "route", "status"], registry=registry)
        self.latency = Histogram("live_http_request_duration_seconds",
                                 "HTTP request latency (until the handler returns) by method and route template",
                                 ["worker", "method", "route"], buckets=HTTP_BUCKETS, registry=registry)
        self.checkouts = PromCounter("live_checkouts", "Checkouts by result: created, replayed, or the error code",
                                     ["worker", "result"], registry=registry)
        self.webhooks = PromCounter("live_webhooks", "Payment webhooks by provider and result (processed, duplicate, "
                                    "ignored, failed, or the refusal's error code)",
                                    ["worker", "provider", "result"], registry=registry)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(self.worker, method, route, str(status)).inc()
        self.latency.labels(self.worker, method, route).observe(seconds)

    def checkout(self, result: str) -> None:
        self.checkouts.labels(self.worker, result).inc()

    def webhook(self, provider: str, result: str) -> None:
        self.webhooks.labels(self.worker, provider, result).inc()


def make_registry(app, counters: EventCounters) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LiveCollector(app, counters))
    registry.register(JobsCollector(app))
    ProcessCollector(registry=registry)
    return registry
