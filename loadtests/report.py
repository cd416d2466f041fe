"""The report: one dict (written as JSON), the summary table printed at the end, thresholds and checks."""
from __future__ import annotations

import json
import operator
from datetime import datetime, timezone

from loadtests.probe import metrics_delta
from loadtests.stats import merge_dumps

SATURATED_PCT = 85.0
PARAMS = ("viewers", "chatters", "buyers", "rate", "reactions", "duration", "ramp", "sample", "procs",
          "concurrency", "drop", "pause", "qty", "variant", "probe_viewers", "batch", "server_cores", "rooms",
          "room_viewers", "room_chatters", "room_rate", "room_prefix")


def build(args, coord, out: dict, scenario, metrics_before: dict | None) -> dict:
    results = out["results"]
    merged = merge_dumps([r["stats"] for r in results])
    joined_msgs = out["joined"]
    t0 = coord.t0
    last_join = max((j["last_join_wall"] for j in joined_msgs.values() if j["last_join_wall"]), default=None)
    report: dict = {
        "tool": "live-loadtest", "scenario": args.scenario, "target": args.url, "stream": args.stream,
        "started_at": datetime.fromtimestamp(t0, timezone.utc).isoformat(timespec="seconds"),
        "wall_s": round(coord.times["end"] - t0, 2),
        "params": {k: getattr(args, k, None) for k in PARAMS},
        "viewers": {"requested": args.viewers, "joined": merged["joined"], "failed": args.viewers - merged["joined"],
                    "connections": merged["connected"],
                    "all_joined_s": (round(last_join - t0, 2)
                                     if last_join and merged["joined"] == args.viewers else None),
                    "last_join_s": round(last_join - t0, 2) if last_join else None},
        "latency_ms": {"delivery": merged["delivery"].summary(), "join": merged["join"].summary(),
                       "ack": {ev: h.summary() for ev, h in sorted(merged["acks"].items())}},
        "events": {"sent": merged["sent"], "ok": merged["ok"], "refused": merged["refused"],
                   "frames_received": merged["frames"], "chat_frames_received": merged["received"],
                   "batch_frames_received": merged["batches"]},
        "latency_source": "probe" if getattr(args, "probe_viewers", 0) else "sample",
        "errors": dict(sorted(merged["errors"].items())),
        "failures": coord.failures,
    }
    report.update(scenario.summarize(report, results, args, out["go"]))
    if "delivery" in report:
        report["delivery"]["latency_samples"] = merged["delivery"].n
    procs = coord.proc_cpu(joined_msgs, out["ran"], results)
    worst = max((p[k] or 0 for p in procs for k in ("join_cpu_pct", "run_cpu_pct")), default=0)
    report["generator"] = {"procs": procs, "saturated": worst > SATURATED_PCT, "busiest_pct": worst,
                           "total_join_cpu_pct": round(sum(p["join_cpu_pct"] or 0 for p in procs), 1),
                           "total_run_cpu_pct": round(sum(p["run_cpu_pct"] or 0 for p in procs), 1),
                           "total_cpu_s": round(sum(p["cpu_s"] or 0 for p in procs) + out["parent_cpu_s"], 2),
                           "parent_cpu_s": round(out["parent_cpu_s"], 2)}
    report["server"] = server_section(args, coord, report)
    report["server_metrics"] = metrics_delta(metrics_before, out["metrics_after"])
    report["phases"] = {name: round(coord.times[key] - t0, 2) for name, key in
                        (("all joined", "joined"), ("run done", "ran")) if key in coord.times}
    report["timeline"] = coord.timeline()
    report["thresholds"] = thresholds(args, report)
    report["checks"] = checks(args, report)
    report["passed"] = all(t["passed"] for t in report["thresholds"] + report["checks"])
    return report


def server_section(args, coord, report: dict) -> dict | None:
    """The server's process (--server-pid) and its cores (--server-cores: `cores`, /proc/stat % of those cores
    over the running phase); None without either."""
    probe = coord.probe
    cores = getattr(coord, "cores", None)
    if probe.proc is None:
        return None if cores is None else {"cores": cores}
    rooms = report.get("rooms") or {"per_room": {}, "delivered": 0}
    joined = report["viewers"]["joined"] + sum(x["joined"] for x in rooms["per_room"].values())  # every socket
    before, after = probe.rss("start"), probe.rss("joined")
    out = {"pid": args.server_pid, "cpu_pct_join": probe.cpu_pct("start", "joined"),
           "cpu_pct_run": probe.cpu_pct("joined", "ran"), "rss_mb_start": round(before / 1e6, 1),
           "rss_mb_joined": round(after / 1e6, 1),
           "kb_per_connection": round((after - before) / 1024 / joined, 1) if joined else None}
    deliveries = (report.get("delivery") or {}).get("deliveries")
    cpu = probe.cpu_seconds("joined", "end")
    if deliveries and cpu is not None:  # per main-room delivery (bench_rows spreads it over the rooms' too)
        out["cpu_us_per_delivery"] = round(cpu * 1e6 / deliveries, 2)
        if rooms["delivered"]:
            out["cpu_us_per_delivery_all_rooms"] = round(cpu * 1e6 / (deliveries + rooms["delivered"]), 2)
    if cores is not None:
        out["cores"] = cores
    return out


def _limit(name: str, value, limit, ok) -> dict:
    return {"name": name, "limit": limit, "value": value, "passed": value is not None and ok(value, limit)}


def thresholds(args, r: dict) -> list[dict]:
    out = []
    lat = r["latency_ms"]
    headline = lat["join"] if args.scenario == "join-storm" else lat["delivery"]
    action = "cart:add" if args.scenario == "flash-sale" else "chat:send"
    if args.max_p99_ms is not None:
        what = "join p99 ms" if args.scenario == "join-storm" else "delivery p99 ms"
        out.append(_limit(what, headline["p99"], args.max_p99_ms, operator.le))
    if args.max_ack_p99_ms is not None:
        out.append(_limit(f"{action} ack p99 ms", lat["ack"].get(action, {}).get("p99"), args.max_ack_p99_ms,
                          operator.le))
    if args.min_delivery is not None:
        out.append(_limit("delivered ratio", (r.get("delivery") or {}).get("delivered_ratio"), args.min_delivery,
                          operator.ge))
    if args.max_join_s is not None:
        out.append(_limit("all joined within s", r["viewers"]["all_joined_s"], args.max_join_s, operator.le))
    rooms = r.get("rooms")
    if rooms is not None:  # the same limits hold in every small room
        if args.max_p99_ms is not None:
            out.append(_limit("rooms: worst delivery p99 ms", rooms["worst_p99_ms"], args.max_p99_ms, operator.le))
        if args.min_delivery is not None:
            out.append(_limit("rooms: worst delivered ratio", rooms["worst_delivery"], args.min_delivery,
                              operator.ge))
    return out


def checks(args, r: dict) -> list[dict]:
    """Correctness, always on: a run that shows any of these failed whatever its speed."""
    out = [{"name": "viewers joined", "value": r["viewers"]["joined"], "passed": r["viewers"]["joined"] > 0},
           {"name": "generator processes finished", "value": len(r["failures"]), "passed": not r["failures"]}]
    d = r.get("delivery")
    if d is not None:
        out.append({"name": "no duplicate delivery", "value": d["duplicates"], "passed": d["duplicates"] == 0})
    rooms = r.get("rooms")
    if rooms is not None:
        short = [slug for slug, x in rooms["per_room"].items() if x["joined"] < r["params"]["room_viewers"]]
        out.append({"name": "every small room's viewers joined", "value": ", ".join(short) or "all",
                    "passed": not short})
        out.append({"name": "no duplicate delivery in the small rooms", "value": rooms["duplicates"],
                    "passed": rooms["duplicates"] == 0})
    f = r.get("flash_sale")
    if f is not None:
        out.append({"name": "not oversold", "value": f["units_added"], "passed": not f["oversold"]})
        if f["expected_successes"] is not None:
            out.append({"name": "every unit in stock sold (no buyer refused while stock was left)",
                        "value": f["succeeded"], "passed": f["succeeded"] == f["expected_successes"]})
            if f["units_added"] >= f["initial_available"]:
                out.append({"name": "every viewer saw the stock reach 0", "value": f"{f['stock_zero_seen_by']}/"
                            f"{f['watchers']}", "passed": f["stock_zero_seen_by"] == f["watchers"]})
    c = r.get("reconnect")
    if c is not None:
        out.append({"name": "every dropped viewer rejoined and recovered", "value": f"{c['recovered']}/{c['dropped']}",
                    "passed": c["recovered"] == c["dropped"]})
        out.append({"name": "no gap or duplicate across the reconnect",
                    "value": c["missing_after_rejoin"] + c["duplicates_after_rejoin"],
                    "passed": c["missing_after_rejoin"] == 0 and c["duplicates_after_rejoin"] == 0})
    return out


def write_json(report: dict, path: str) -> None:
    text = json.dumps(report, indent=2)
    if path == "-":
        print(text)
    else:
        with open(path, "w") as f:
            f.write(text + "\n")


# ---- the table ----

def _n(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}"
    return f"{v:,}"


def latency_rows(r: dict) -> list[tuple[str, dict]]:
    """(name, summary) of every latency with samples: delivery, join, then each event's acks."""
    lat = r["latency_ms"]
    rows = [("delivery", lat["delivery"]), ("join", lat["join"])] + [(f"ack {k}", v) for k, v in lat["ack"].items()]
    return [(name, s) for name, s in rows if s["n"]]


def ratio_text(delivery: dict) -> str:
    """The delivered ratio as a percentage ('-' when no delivery was expected)."""
    ratio = delivery["delivered_ratio"]
    return "-" if ratio is None else f"{100 * ratio:.3f} %"


def table(r: dict) -> str:
    lines = []
    g = r["generator"]
    lines.append(f"live-loadtest {r['scenario']} -> {r['target']} stream {r['stream']}  "
                 f"({r['wall_s']:.1f} s, {len(g['procs'])} generator process{'es' if len(g['procs']) > 1 else ''})")
    v = r["viewers"]
    lines.append(f"  viewers      {_n(v['requested'])} requested, {_n(v['joined'])} joined"
                 + (f", all joined after {v['all_joined_s']:.2f} s" if v["all_joined_s"] is not None else
                    f", last join at {_n(v['last_join_s'])} s"))
    d = r.get("delivery")
    if d is not None:
        lines.append(f"  chat         {_n(d['messages_sent'])} sent and acked; delivered {_n(d['deliveries'])} of "
                     f"{_n(d['deliveries_expected'])} ({ratio_text(d)}); missing {_n(d['missing'])}, duplicates "
                     f"{_n(d['duplicates'])}, viewers lost {_n(d['viewers_lost'])}")
    rooms = r.get("rooms")
    if rooms is not None:
        ratio = rooms["worst_delivery"]
        lines.append(f"  rooms        {rooms['count']} small rooms: delivered {_n(rooms['delivered'])} of "
                     f"{_n(rooms['expected'])}, worst room {'-' if ratio is None else f'{100 * ratio:.3f} %'}; "
                     f"worst p99 {_n(rooms['worst_p99_ms'])} ms; duplicates {_n(rooms['duplicates'])}")
    if r["events"]["ok"].get("reaction") or r["events"]["refused"].get("reaction"):
        lines.append(f"  reactions    {_n(r['events']['ok'].get('reaction', 0))} ok, refused "
                     f"{r['events']['refused'].get('reaction') or 'none'}")
    f = r.get("flash_sale")
    if f is not None:
        lines.append(f"  flash sale   variant {f['variant_id']}: {_n(f['initial_available'])} available, "
                     f"{_n(f['buyers'])} buyers x {f['qty']}; {_n(f['succeeded'])} succeeded, {_n(f['out_of_stock'])} "
                     f"out_of_stock, other {f['other_errors'] or 'none'}; oversold: {'YES' if f['oversold'] else 'no'}")
        lines.append(f"               stock 0 seen by {_n(f['stock_zero_seen_by'])} of {_n(f['watchers'])} viewers "
                     f"(lowest seen {_n(f['lowest_available_seen'])}); all sent within {_n(f['fire_spread_ms'])} ms")
    c = r.get("reconnect")
    if c is not None:
        lines.append(f"  reconnect    {_n(c['dropped'])} dropped, {_n(c['rejoined'])} rejoined, {_n(c['recovered'])} "
                     f"recovered; after rejoin missing {_n(c['missing_after_rejoin'])}, duplicates "
                     f"{_n(c['duplicates_after_rejoin'])}; rejoin p99 {_n(c['rejoin_ms']['p99'])} ms")
    lines.append(f"  {'latency (ms)':<18}{'n':>10}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}"
                 + ("   (delivery: the probe process)" if r.get("latency_source") == "probe" else ""))
    for name, s in latency_rows(r):
        if name != "ack join":  # the table keeps the join row (connect start to ack) only
            lines.append(f"  {name:<18}{_n(s['n']):>10}"
                         + "".join(f"{_n(s[k]):>9}" for k in ("p50", "p95", "p99", "max")))
    lines.append(f"  errors       {', '.join(f'{k} {n:,}' for k, n in r['errors'].items()) or 'none'}")
    s = r["server"]
    if s is not None and s.get("cores"):
        c = s["cores"]
        lines.append(f"  server cores {','.join(map(str, c['cores']))}: busy {_n(c['busy'])} % (user {_n(c['user'])}, "
                     f"system {_n(c['system'])}, softirq {_n(c['softirq'])}, irq {_n(c['irq'])}) while running")
    if s is not None and "pid" in s:
        extra = f", {s['cpu_us_per_delivery']} us CPU per delivery" if s.get("cpu_us_per_delivery") else ""
        lines.append(f"  server       CPU {_n(s['cpu_pct_run'])} % running, {_n(s['cpu_pct_join'])} % joining; "
                     f"RSS {_n(s['rss_mb_start'])} -> {_n(s['rss_mb_joined'])} MB, {_n(s['kb_per_connection'])} KB "
                     f"per connection{extra}")
    m = r["server_metrics"]
    if m and "joins" in m:
        lines.append(f"  server saw   joins {m['joins'] or '-'}, chat {m['chat_messages'] or '-'}, reactions "
                     f"{m['reactions'] or '-'}, cart:add {m['cart_adds'] or '-'}, slow-consumer drops "
                     f"{m['slow_consumer_drops']}")
    procs = "; ".join(f"#{q['proc']} {_n(q['run_cpu_pct'])} % running, {_n(q['join_cpu_pct'])} % joining"
                      for q in g["procs"])
    if len(g["procs"]) > 1:
        procs += f"; total {_n(g['total_run_cpu_pct'])} % running, {_n(g['total_join_cpu_pct'])} % joining"
    lines.append(f"  generator    {procs}"
                 + (f"  GENERATOR SATURATED ({g['busiest_pct']:.0f} % of a core): "
                    "numbers may be the generator's, not the server's" if g["saturated"] else ""))
    for t in r["thresholds"] + r["checks"]:
        if "limit" in t or not t["passed"]:
            limit = f" (limit {t['limit']})" if "limit" in t else ""
            lines.append(f"  {'PASS' if t['passed'] else 'FAIL'}         {t['name']}: {_n(t['value'])}{limit}")
    for failure in r["failures"]:
        lines.append(f"  FAILURE      {failure}")
    lines.append(f"  result       {'passed' if r['passed'] else 'FAILED'}")
    return "\n".join(lines)
