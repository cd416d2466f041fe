"""The parent process: fork the generator processes, move them through the phases together, print the
progress line, sample the server every second and collect everything the report needs."""
from __future__ import annotations

import asyncio
import multiprocessing
import sys
import time

from loadtests.probe import ServerProbe, scrape
from loadtests.stats import Hist
from loadtests.worker import Plan, attach_pipe, cpu_seconds, run_worker

GO_DELAY = {"flash-sale": 1.0}  # seconds between "everyone joined" and the first action (0.3 otherwise)


class Coordinator:
    def __init__(self, args, plans: list[Plan], scenario, probe: ServerProbe, metrics_url: str | None,
                 progress: bool, cores=None):
        self.args, self.plans, self.scenario, self.probe = args, plans, scenario, probe
        self.core_stat = cores  # a probe.CoreStat of --server-cores, read over the running phase
        self.cores: dict | None = None
        self.refused_rooms: list[str] = []  # a small room that refused its viewers: the run stops there
        self.metrics_url = metrics_url
        self.show_progress = progress
        self.tty = sys.stderr.isatty()
        self.t0 = plans[0].t0
        self.procs: list = []
        self.conns: list = []
        self.dead: set[int] = set()
        self.failures: list[str] = []
        self.latest: dict[int, dict] = {}
        self.ticks: dict[int, dict[int, dict]] = {}  # second -> proc -> tick
        self.lat_by_second: dict[int, Hist] = {}
        self.lat_total = Hist()
        self.server_by_second: dict[int, float] = {}
        self.phase = "joining"
        self.times: dict[str, float] = {"start": time.time()}
        self.inbox: asyncio.Queue | None = None

    # ---- processes ----

    def start(self) -> None:
        """Fork the workers before the parent starts its own event loop."""
        ctx = multiprocessing.get_context("fork")
        for plan in self.plans:
            parent, child = ctx.Pipe()
            p = ctx.Process(target=run_worker, args=(plan, child), name=f"loadtest-{plan.proc}", daemon=True)
            p.start()
            child.close()
            self.procs.append(p)
            self.conns.append(parent)

    def _readable(self, k: int) -> None:
        try:
            msg = self.conns[k].recv()
        except (EOFError, OSError):
            asyncio.get_running_loop().remove_reader(self.conns[k].fileno())
            msg = ("gone", None)
        self.inbox.put_nowait((k, msg))

    def broadcast(self, kind: str, data: dict) -> None:
        for k, conn in enumerate(self.conns):
            if k not in self.dead:
                try:
                    conn.send((kind, data))
                except OSError:
                    self.dead.add(k)

    async def gather(self, kind: str) -> dict[int, dict]:
        """Wait for `kind` from every live worker, handling ticks meanwhile."""
        got: dict[int, dict] = {}
        while any(k not in got and k not in self.dead for k in range(len(self.conns))):
            k, (msg_kind, data) = await self.inbox.get()
            if msg_kind == "tick":
                self.on_tick(k, data)
            elif msg_kind == kind:
                got[k] = data
            elif msg_kind == "error":
                self.failures.append(f"generator {k}: {data}")
            elif msg_kind == "gone":
                if k not in got:
                    self.dead.add(k)
                    if not self.failures or not self.failures[-1].startswith(f"generator {k}:"):
                        self.procs[k].join(timeout=2)
                        self.failures.append(f"generator {k} exited (status {self.procs[k].exitcode})")
        return got

    def on_tick(self, k: int, tick: dict) -> None:
        self.latest[k] = tick
        self.ticks.setdefault(tick["t"], {})[k] = tick
        lat = Hist.load(tick["lat"])
        self.lat_total.merge(lat)
        self.lat_by_second.setdefault(tick["t"], Hist()).merge(lat)

    # ---- the run ----

    async def main(self) -> dict:
        loop = asyncio.get_running_loop()
        self.inbox = asyncio.Queue()
        for k, conn in enumerate(self.conns):
            attach_pipe(loop, conn, self._readable, k)
        background = [asyncio.create_task(self._server_seconds())]
        if self.show_progress:
            background.append(asyncio.create_task(self._progress()))
        cpu0 = cpu_seconds()
        try:
            joined = await self.gather("joined")
            self.times["joined"] = time.time()
            self.probe.mark("joined")
            self.refused_rooms = room_refusals(joined)
            go, ran = {}, {}
            if self.refused_rooms:
                self.failures.extend(self.refused_rooms)
                self.broadcast("stop", {})
            else:
                if self.core_stat is not None:
                    self.core_stat.start()
                go = self.go_payload(joined)
                self.phase = "running"
                self.broadcast("go", go)
                ran = await self.gather("ran")
                self.times["ran"] = time.time()
                self.probe.mark("ran")
                if self.core_stat is not None:
                    self.cores = self.core_stat.stop()
                self.phase = "draining"
                self.broadcast("drain", self.drain_payload(go, ran))
            results = await self.gather("result")
            self.times["end"] = time.time()
            self.probe.mark("end")
            metrics_after = await asyncio.to_thread(scrape, self.metrics_url)
        finally:
            for task in background:
                task.cancel()
            if self.show_progress:
                self._print_progress(final=True)
        for p in self.procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
        return {"joined": joined, "go": go, "ran": ran, "results": [results[k] for k in sorted(results)],
                "metrics_after": metrics_after, "parent_cpu_s": cpu_seconds() - cpu0}

    def go_payload(self, joined: dict[int, dict]) -> dict:
        args = self.args
        at = time.time() + GO_DELAY.get(args.scenario, 0.3)
        go = {"at": at, "until": at + args.duration, "drop_at": at + 0.3 * args.duration}
        if args.scenario == "flash-sale":
            variant, available = args.variant, None
            for data in joined.values():
                spot = (data.get("snapshot") or {}).get("spotlight")
                if not spot:
                    continue
                variants = spot.get("variants", [])
                if variant is None:
                    choice = next((v for v in variants if v.get("available", 0) > 0), variants[0] if variants else None)
                    variant = choice["id"] if choice else None
                match = next((v for v in variants if v["id"] == variant), None)
                if match is not None:
                    available = match.get("available")
                break
            go.update(variant=variant, available=available)
        return go

    def drain_payload(self, go: dict, ran: dict[int, dict]) -> dict:
        if self.scenario.delivery:  # every chat message acked in the run: the workers wait for all of them
            rooms: dict[str, list[int]] = {}
            for r in ran.values():
                for slug, seqs in r.get("room_seqs", {}).items():
                    rooms.setdefault(slug, []).extend(seqs)
            return {"chat_seqs": sorted(s for r in ran.values() for s in r.get("chat_seqs", ())),
                    "room_seqs": {slug: sorted(seqs) for slug, seqs in rooms.items()}}
        if self.args.scenario != "flash-sale" or go.get("available") is None:
            return {}
        units = sum(r.get("ok", 0) for r in ran.values()) * self.args.qty
        return {"stock_zero": units >= go["available"]}  # sold out: wait until every viewer has seen 0

    # ---- every second ----

    async def _server_seconds(self) -> None:
        if self.probe.proc is None:
            return
        last_t, last_cpu = time.monotonic(), self.probe.sample()[0]
        while True:
            await asyncio.sleep(1.0 - ((time.time() - self.t0) % 1.0))
            t, cpu = time.monotonic(), await asyncio.to_thread(lambda: self.probe.sample()[0])
            self.server_by_second[round(time.time() - self.t0)] = 100 * (cpu - last_cpu) / (t - last_t)
            last_t, last_cpu = t, cpu

    async def _progress(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self._print_progress()

    def _print_progress(self, final: bool = False) -> None:
        snaps = list(self.latest.values())
        if not snaps:
            return
        now = max(s["t"] for s in snaps)
        prev = {k: self.ticks.get(now - 1, {}).get(k) for k in self.latest}
        rate_in = sum(s["received"] - (prev[k] or {}).get("received", 0)
                      for k, s in self.latest.items() if s["t"] == now)
        rate_out = sum(s["sent"] - (prev[k] or {}).get("sent", 0) for k, s in self.latest.items() if s["t"] == now)
        p99 = self.lat_total.percentile(0.99)
        cpu = [round(100 * (s["cpu"] - ((prev[k] or {}).get("cpu", s["cpu"]))), 0) for k, s in self.latest.items()]
        line = (f"{now:4d}s {self.phase:<9} viewers {sum(s['open'] for s in snaps):,}/{self.args.viewers:,}"
                f"  in {rate_in:,}/s  out {rate_out:,}/s  p99 {'-' if p99 is None else f'{p99:,.0f} ms'}"
                f"  errors {sum(s['errors'] for s in snaps):,}  gen cpu {'/'.join(f'{c:.0f}%' for c in cpu)}")
        if self.tty:
            print("\r\x1b[2K" + line, end="\n" if final else "", file=sys.stderr, flush=True)
        elif not final:
            print(line, file=sys.stderr, flush=True)

    # ---- time series for the report ----

    def timeline(self) -> list[dict]:
        if not self.ticks:
            return []
        rows = []
        last: dict[int, dict] = {}
        for t in range(min(self.ticks), max(self.ticks) + 1):
            cur = dict(last)
            cur.update(self.ticks.get(t, {}))
            h = self.lat_by_second.get(t)
            rows.append({
                "t": t,
                "viewers": sum(s["open"] for s in cur.values()),
                "msgs_in": sum(s["received"] - last.get(k, {}).get("received", 0) for k, s in cur.items()),
                "msgs_out": sum(s["sent"] - last.get(k, {}).get("sent", 0) for k, s in cur.items()),
                "errors": sum(s["errors"] for s in cur.values()),
                "p50": h.percentile(.5) if h else None, "p95": h.percentile(.95) if h else None,
                "p99": h.percentile(.99) if h else None, "max": h.hi if h and h.n else None,
                "gen_cpu": [round(100 * (s["cpu"] - last.get(k, {}).get("cpu", 0.0)), 1)
                            for k, s in sorted(cur.items())],
                "server_cpu": round(self.server_by_second[t], 1) if t in self.server_by_second else None,
            })
            last = cur
        return rows

    def proc_cpu(self, joined: dict, ran: dict, results: list[dict]) -> list[dict]:
        """Each worker's CPU (% of one core) while joining, while running, and over its whole life."""
        out = []
        for k, plan in enumerate(self.plans):
            j, r = joined.get(k), ran.get(k)
            res = next((x for x in results if x["proc"] == k), None)

            def pct(cpu: float, seconds: float) -> float | None:
                return round(100 * cpu / seconds, 1) if seconds > 0.05 else None

            out.append({
                "proc": k, "pid": self.procs[k].pid, "viewers": plan.viewers,
                "join_cpu_pct": pct(j["cpu"], j["wall"] - self.t0) if j else None,
                "run_cpu_pct": pct(r["cpu"] - j["cpu"], r["wall"] - j["wall"]) if j and r else None,
                "total_cpu_pct": pct(res["cpu"], res["wall"] - self.t0) if res else None,
                "cpu_s": round(res["cpu"], 2) if res else None,
            })
        return out


NOT_ANSWERED = ("join_timeout", "join_no_ack")  # the server said nothing: a slow join, not a refusal


def room_refusals(joined: dict[int, dict]) -> list[str]:
    """One line per small room whose joins the server refused (join_<code> errors from its error acks, e.g.
    join_not_found), naming the stream. A join that timed out or got no ack, or a connection that failed, is no
    refusal of the room: the run goes on and the report counts it among the errors."""
    out = []
    for data in joined.values():
        for slug, r in (data.get("rooms") or {}).items():
            refused = {k: n for k, n in r["errors"].items() if k.startswith("join_") and k not in NOT_ANSWERED}
            if refused:
                codes = ", ".join(f"{k} x{n}" for k, n in sorted(refused.items()))
                out.append(f"room {slug}: {r['viewers'] - r['joined']} of {r['viewers']} viewers not joined "
                           f"({codes}); is the stream {slug!r} created and live?")
    return out
