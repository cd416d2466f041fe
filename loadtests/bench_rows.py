"""The markdown rows `python -m loadtests bench` prints for docs/benchmarks.md: the old tables' layouts (join storm,
flash sale, reconnect) and issue 17's (the probe-split audiences, many rooms), with the hub's own numbers from
the server's /metrics when it has them."""
from __future__ import annotations

from datetime import date

from loadtests.bench_scenarios import PROBE_SPLIT
from loadtests.report import ratio_text

HEADERS = {
    "probe": ("| date | server | scenario, run | viewers | msgs sent | delivered | duplicates | p50 | p95 | p99 | max "
              "| server CPU | server CPU per delivery | server cores: busy / softirq | hub: writes/s, bytes and µs "
              "per write | generator CPU (busiest process) | latency from |"),
    "rooms": ("| date | server | run | main room: viewers, delivered, p50 / p99 | rooms × viewers | rooms: worst "
              "delivered | rooms: worst p99 | server CPU | server CPU per delivery (every room's) | server cores: busy "
              "/ softirq | rooms holding a hub timer (most seen) | generator CPU (busiest process) |"),
}


def header(scenario: str) -> str | None:
    """The table head of a scenario with a layout of its own (None: an existing table of docs/benchmarks.md)."""
    kind = "probe" if scenario in PROBE_SPLIT else "rooms" if scenario == "rooms" else None
    if kind is None:
        return None
    head = HEADERS[kind]
    return head + "\n" + "|" + " --- |" * (head.count("|") - 1)


def _ms(v) -> str:
    return "-" if v is None else f"{v:,.0f} ms"


def _pct(v) -> str:
    return "-" if v is None else f"{v:.1f} %"


def _ratio(d: dict | None) -> str:
    if not d:
        return "-"
    return f"{ratio_text(d)} ({d['deliveries']:,})" if "deliveries" in d else ratio_text(d)


def hub_delta(before: dict | None, after: dict | None) -> dict:
    """The hub's counters (`live_hub_*_total` of /metrics) over a run, keyed without prefix and suffix, and its
    gauges' last values; {} when the server has no such metrics (the Node reference, the naive server) or the two
    scrapes reached different workers."""
    if not before or not after or before.get("_worker") != after.get("_worker"):
        return {}
    out: dict = {}
    for key, value in after.items():
        if not isinstance(key, tuple) or key[1] or not key[0].startswith("live_hub_"):
            continue
        name = key[0].removeprefix("live_hub_")
        if name.endswith("_total"):
            out[name.removesuffix("_total")] = value - before.get(key, 0.0)
        elif not name.endswith("_created"):
            out[name] = value
    return out


def hub_text(hub: dict, seconds: float | None) -> str:
    """writes/s, bytes per write and µs per write from the hub's counters (what it has of them); `seconds` is
    the report's wall_s, the whole generator run (joins included: /metrics is read before and after it)."""
    writes = hub.get("socket_writes")
    if not writes:
        return "-"
    parts = [f"{writes / seconds:,.0f}/s" if seconds else f"{writes:,.0f}"]
    if hub.get("bytes"):
        parts.append(f"{hub['bytes'] / writes:,.0f} B")
    if hub.get("write_seconds"):
        parts.append(f"{hub['write_seconds'] * 1e6 / writes:.2f} µs")
    return ", ".join(parts)


def _cores(server: dict) -> str:
    c = server.get("cores")  # /proc/stat of the server's cores while running (loadtests/probe.py CoreStat)
    if not isinstance(c, dict):
        return "-"
    return f"{_pct(c.get('busy'))} / {_pct(c.get('softirq'))}"


def _gen(r: dict) -> str:
    """The busiest generator process's CPU while running: the Python generator's `generator` section, or the Node
    generator's (`generator: "node"`, `generator_procs`, `generator_saturated`)."""
    g = r.get("generator")
    procs, saturated = ((g["procs"], g["saturated"]) if isinstance(g, dict)
                        else (r.get("generator_procs") or [], r.get("generator_saturated")))
    busiest = max((p.get("run_cpu_pct") or 0 for p in procs), default=None)
    return _pct(busiest) + (" (generator saturated)" if saturated else "")


def row(scenario: str, target: str, r: dict, label: str = "", hub: dict | None = None) -> str:
    """One markdown table row in the layout of docs/benchmarks.md."""
    today = date.today().isoformat()
    server = r.get("server") or {}
    gen = _gen(r)
    if scenario in PROBE_SPLIT:
        d, lat, hub_s = r["delivery"], r["latency_ms"]["delivery"], hub_text(hub or {}, r.get("wall_s"))
        return (f"| {today} | {target} | {scenario}{label} | {r['viewers']['joined']:,} | {d['messages_sent']:,} | "
                f"{_ratio(d)} | {d['duplicates']} | {_ms(lat['p50'])} | {_ms(lat['p95'])} | {_ms(lat['p99'])} | "
                f"{_ms(lat['max'])} | {_pct(server.get('cpu_pct_run'))} | {server.get('cpu_us_per_delivery', '-')} µs "
                f"| {_cores(server)} | {hub_s} | {gen} | {r.get('latency_source', '-')} |")
    if scenario == "rooms":
        d, lat, rooms = r["delivery"], r["latency_ms"]["delivery"], r.get("rooms") or {}
        worst = rooms.get("worst_delivery")  # the worst small room's (loadtests/scenarios.py rooms_summary)
        worst_d, worst_p99 = (None if worst is None else {"delivered_ratio": worst}), rooms.get("worst_p99_ms")
        timers = (hub or {}).get("timers_max", (hub or {}).get("timers"))
        # the report's own figure over every room's deliveries (cpu_us_per_delivery is per main-room delivery);
        # with no small-room delivery it has no such key and the two are the same
        per = server.get("cpu_us_per_delivery_all_rooms",
                         None if rooms.get("delivered") else server.get("cpu_us_per_delivery"))
        return (f"| {today} | {target} | {label.strip(', ') or '-'} | {r['viewers']['joined']:,}, {_ratio(d)}, "
                f"{_ms(lat['p50'])} / {_ms(lat['p99'])} | {rooms.get('count', '-')} × "
                f"{r.get('params', {}).get('room_viewers', '-')} | {_ratio(worst_d)} | {_ms(worst_p99)} | "
                f"{_pct(server.get('cpu_pct_run'))} | {'-' if per is None else per} µs | {_cores(server)} | "
                f"{'-' if timers is None else f'{timers:,.0f}'} | {gen} |")
    joingen = max((p["join_cpu_pct"] or 0 for p in r["generator"]["procs"]), default=None)
    sat = " (generator saturated)" if r["generator"]["saturated"] else ""
    if scenario == "join-storm":
        j = r["latency_ms"]["join"]
        after = r["viewers"]["all_joined_s"]
        return (f"| {today} | {target} | {label} | {r['viewers']['joined']:,} | "
                f"{'-' if after is None else f'{after:.1f} s'} | "
                f"{_ms(j['p50'])} / {_ms(j['p99'])} | {server.get('kb_per_connection', '-')} KB | "
                f"{_pct(server.get('cpu_pct_join'))} | {_pct(joingen)}{sat} |")
    if scenario == "flash-sale":
        f, a = r["flash_sale"], r["latency_ms"]["ack"].get("cart:add", {})
        return (f"| {today} | {target} | {f['buyers']:,} | {f['initial_available']} | {f['succeeded']:,} | "
                f"{f['out_of_stock']:,} | {f['other_errors'] or 'none'} | {_ms(a.get('p50'))} / {_ms(a.get('p99'))} / "
                f"{_ms(a.get('max'))} | {f['stock_zero_seen_by']:,} of {f['watchers']:,} | "
                f"{'YES' if f['oversold'] else 'no'} |")
    if scenario == "reconnect":
        c, d = r["reconnect"], r["delivery"]
        return (f"| {today} | {target} | {r['viewers']['joined']:,} | {c['dropped']:,} | {c['recovered']:,} | "
                f"{c['missing_after_rejoin']} | {c['duplicates_after_rejoin']} | {_ms(c['rejoin_ms']['p50'])} / "
                f"{_ms(c['rejoin_ms']['p99'])} | {ratio_text(d)} |")
    raise ValueError(f"no row layout for scenario {scenario!r}")
