"""The report of `python -m loadtests nodegen` (loadtests/nodegen.py): the node processes' results merged into the
Python generator's keys (`delivery` by loadtests/scenarios.delivery_summary, `latency_ms`, `server`, `thresholds`,
`checks` by loadtests/report.py), plus what only this generator has (`seqs_short`, `timeline`, `generator_procs`),
and its summary table."""
from __future__ import annotations

import bisect
import math
from datetime import datetime, timezone
from types import SimpleNamespace

from loadtests.probe import ServerProbe, metrics_delta
from loadtests.report import SATURATED_PCT, checks, latency_rows, ratio_text, server_section, thresholds
from loadtests.scenarios import delivery_summary
from loadtests.stats import Hist

MIN_PHASE_S = 0.5  # a phase's CPU % is only given (and can only flag a saturated generator) from this long


def hist(dump: list) -> Hist:
    buckets, n, total, lo, hi = dump
    return Hist.load(({int(b): c for b, c in buckets.items()}, n, total, math.inf if lo is None else lo, hi))


def merged_hist(results: list[dict], key: str) -> Hist:
    h = Hist()
    for r in results:
        h.merge(hist(r[key]))
    return h


def pct(cpu_s: float, wall_s: float) -> float | None:
    """CPU in % of a core; None for a phase under MIN_PHASE_S (too short to say a process was saturated)."""
    return round(100 * cpu_s / wall_s, 1) if wall_s >= MIN_PHASE_S else None


def timeline(results: list[dict]) -> list[dict]:
    """The probe's delivery latency per second of the run (t: seconds since the chat started, at receipt)."""
    by: dict[int, Hist] = {}
    for r in results:
        for t, d in r["by_second"].items():
            by.setdefault(int(t), Hist()).merge(hist(d))
    return [{"t": t, "n": h.n, **{k: v for k, v in h.summary().items() if k in ("p50", "p95", "p99", "max")}}
            for t, h in sorted(by.items())]


def seq_check(results: list[dict], seqs: list[int]) -> int:
    """How many of the run's messages reached fewer viewers than had joined before them (bulk processes count
    deliveries per seq, the probe keeps each viewer's seqs)."""
    joins = sorted(a[0] for r in results for a in r["accounting"])
    got: dict[int, int] = {}
    for r in results:
        for s, n in r["seq_count"].items():
            got[int(s)] = got.get(int(s), 0) + n
        for a in r["accounting"]:
            for s in a[3] or ():
                got[s] = got.get(s, 0) + 1
    return sum(1 for s in seqs if got.get(s, 0) < bisect.bisect_left(joins, s))


def build(args, run: dict, probe: ServerProbe, metrics_before: dict | None, metrics_after: dict | None) -> dict:
    results = run["results"]
    seqs = sorted(s for r in results for s in r["chat_seqs"])
    delivery = delivery_summary([{"ran": {"chat_seqs": r["chat_seqs"]},
                                  "accounting": [(*a, False) for a in r["accounting"]]} for r in results])
    latency = merged_hist(results, "latency")
    delivery["latency_samples"] = latency.n
    delivery["seqs_short"] = seq_check(results, seqs)
    acks: dict[str, Hist] = {}
    for r in results:
        for ev, d in r["acks"].items():
            acks.setdefault(ev, Hist()).merge(hist(d))
    joined = sum(r["joined"] for r in results)
    last_join = max((r["last_join_wall"] for r in run["ready"] if r["last_join_wall"]), default=None)
    errors: dict[str, int] = {}
    ok: dict[str, int] = {}
    refused: dict[str, dict] = {}
    for r in results:
        for k, n in r["errors"].items():
            errors[k] = errors.get(k, 0) + n
        for k, n in r["ok"].items():
            ok[k] = ok.get(k, 0) + n
        for ev, codes in r["refused"].items():
            by = refused.setdefault(ev, {})
            for code, n in codes.items():
                by[code] = by.get(code, 0) + n
    procs = [{"proc": r["proc"], "role": r["role"], "viewers": r["viewers"], "joined": r["joined"],
              "join_cpu_pct": pct(r["join_cpu_s"], r["join_wall_s"]),
              "run_cpu_pct": pct(r["run_cpu_s"], r["run_wall_s"]),
              "cpu_s": round(r["cpu_s"], 2)} for r in results]
    busiest = max((q[k] or 0 for q in procs for k in ("join_cpu_pct", "run_cpu_pct")), default=0)
    t0 = run["t0"]
    report: dict = {
        "tool": "live-loadtest nodegen", "generator": "node", "scenario": "audience", "target": args.url,
        "stream": args.stream, "batch": args.batch, "deflate": args.deflate, "latency_source": "probe",
        "started_at": datetime.fromtimestamp(t0, timezone.utc).isoformat(timespec="seconds"),
        "wall_s": round(run["end"] - t0, 2),
        "params": {k: getattr(args, k) for k in ("viewers", "chatters", "rate", "duration", "ramp", "procs",
                                                 "probe_viewers", "concurrency", "batch", "deflate")},
        "viewers": {"requested": args.viewers, "joined": joined, "failed": args.viewers - joined,
                    "connections": sum(r["connected"] for r in results),
                    "all_joined_s": round(last_join - t0, 2) if last_join and joined == args.viewers else None,
                    "last_join_s": round(last_join - t0, 2) if last_join else None},
        "delivery": delivery,
        "latency_ms": {"delivery": latency.summary(), "join": merged_hist(results, "join").summary(),
                       "ack": {ev: h.summary() for ev, h in sorted(acks.items())}},
        "events": {"sent": sum(r["sent"] for r in results), "ok": ok, "refused": refused,
                   "frames_received": sum(r["frames"] for r in results),
                   "chat_frames_received": sum(r["chat_frames"] for r in results),
                   "batch_frames_received": sum(r["batch_frames"] for r in results)},
        "errors": dict(sorted(errors.items())), "notes": [n for r in results for n in r["notes"]][:20],
        "failures": [],
        "timeline": timeline(results),
        "generator_procs": procs, "generator_saturated": busiest > SATURATED_PCT, "generator_busiest_pct": busiest,
    }
    report["server"] = server_section(args, SimpleNamespace(probe=probe, cores=run["cores"]), report)
    report["server_metrics"] = metrics_delta(metrics_before, metrics_after)
    report["thresholds"] = thresholds(args, report)
    report["checks"] = checks(args, report) + [
        {"name": "every message reached every viewer joined before it", "value": delivery["seqs_short"],
         "passed": delivery["seqs_short"] == 0}]
    report["passed"] = all(t["passed"] for t in report["thresholds"] + report["checks"])
    return report


def table(r: dict) -> str:
    d, v = r["delivery"], r["viewers"]
    lines = [f"live-loadtest nodegen (node generator) -> {r['target']} stream {r['stream']}  ({r['wall_s']:.1f} s, "
             f"{len(r['generator_procs'])} processes{', batched events' if r['batch'] else ''})",
             f"  viewers      {v['requested']:,} requested, {v['joined']:,} joined",
             f"  chat         {d['messages_sent']:,} sent and acked; delivered {d['deliveries']:,} of "
             f"{d['deliveries_expected']:,} ({ratio_text(d)}); missing {d['missing']:,}, duplicates "
             f"{d['duplicates']:,}; messages short of a viewer {d['seqs_short']:,}",
             f"  {'latency (ms)':<18}{'n':>10}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}"]
    for name, s in latency_rows(r):
        if name != "ack join":
            lines.append(f"  {name:<18}{s['n']:>10,}" + "".join(f"{s[k]:>9,.1f}" for k in ("p50", "p95", "p99", "max")))
    lines.append(f"  errors       {', '.join(f'{k} {n:,}' for k, n in r['errors'].items()) or 'none'}")
    s = r["server"]
    if s and s.get("cpu_pct_run") is not None:
        lines.append(f"  server       CPU {s['cpu_pct_run']} % running, {s['cpu_pct_join']} % joining"
                     + (f", {s['cpu_us_per_delivery']} us per delivery" if s.get("cpu_us_per_delivery") else ""))
    if s and s.get("cores"):
        c = s["cores"]
        lines.append(f"  server cores {c['cores']}: busy {c['busy']} % (user {c['user']}, system {c['system']}, "
                     f"softirq {c['softirq']}, irq {c['irq']})")
    lines.append("  generator    " + "; ".join(f"#{q['proc']} {q['role']} {q['run_cpu_pct'] or '-'} % running"
                                               for q in r["generator_procs"])
                 + ("  GENERATOR SATURATED" if r["generator_saturated"] else ""))
    for t in r["thresholds"] + r["checks"]:
        if "limit" in t or not t["passed"]:
            lines.append(f"  {'PASS' if t['passed'] else 'FAIL'}         {t['name']}: {t['value']}"
                         + (f" (limit {t['limit']})" if "limit" in t else ""))
    lines.append(f"  result       {'passed' if r['passed'] else 'FAILED'}")
    return "\n".join(lines)
