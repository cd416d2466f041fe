"""The text summary of `python -m loadtests fulfillment` and its rows in the layout of docs/benchmarks.md."""
from __future__ import annotations

from datetime import date


def _ms(v) -> str:
    return "-" if v is None else f"{v:,.1f} ms"


def _checks(r: dict) -> list[str]:
    return [f"  [{'ok' if c['passed'] else 'FAILED'}] {c['name']}: {c['value']}"
            for c in r["checks"] + r.get("thresholds", [])]


def summary(report: dict) -> str:
    lines = [f"live-loadtest fulfillment, {report['started_at']}, load average "
             + " ".join(f"{x:.2f}" for x in report["machine"]["load_average"])]
    d = report.get("labels_drain")
    if d:
        k = d["killed"]
        lines += [f"\nlabels-drain: {d['orders']:,} orders, 2 live workers (JOBS_CONCURRENCY {d['jobs_concurrency']}, "
                  f"JOBS_HEARTBEAT_SECONDS {d['heartbeat_s']:g}), fake Shippo",
                  f"  seeding: {d['seed_s']}",
                  "  kill -9: " + (f"worker A after {k['after_labels']:,} labels at {k['at_s']} s "
                                   f"({k['purchasing_then']} shipments purchasing then); the rest took "
                                   f"{k['recovered_s']} s more" if k else "none"),
                  f"  labelled {d['labelled']:,} in {d['drain_s']} s from the workers' start "
                  f"({d['from_first_label_s']} s from the first label), {d['labels_per_s']} labels/s; "
                  f"no label job left after {d['queue_empty_s']} s"
                  + (" TIMED OUT" if d["timed_out"] else ""),
                  f"  provider: {d['provider']['transactions']:,} transactions ({d['provider']['errors']} ERROR); "
                  f"job log: {d['job_log']}", *_checks(d)]
    for s in report.get("tracking_storm", []):
        lat = s["latency_ms"]
        lines += [f"\ntracking-storm ({s['route']}: {s['url']}): {s['sent']:,} webhooks for {s['shipments']:,} "
                  f"shipments ({s['distinct_events']:,} distinct + {s['duplicates']:,} duplicates, shuffled), "
                  f"{s['concurrency']} in flight",
                  f"  answers {s['answers']} errors {s['errors'] or 'none'}; {s['wall_s']} s, {s['per_s']} webhooks/s; "
                  f"server CPU {s['server_cpu_pct']} %, PostgreSQL CPU {s['postgres_cpu_pct']} %, "
                  f"generator CPU {s['generator_cpu_pct']} %",
                  f"  latency p50 {_ms(lat['p50'])}, p95 {_ms(lat['p95'])}, p99 {_ms(lat['p99'])}, "
                  f"max {_ms(lat['max'])}",
                  f"  applied (no shipping.apply_tracking job left) {s.get('apply_drain_s')} s after the last answer",
                  f"  final: shipments {s['final']['shipments']}, orders {s['final']['orders']}, event rows "
                  f"{s['final']['event_rows']:,} ({s['final']['events_applied']:,} applied)", *_checks(s)]
    lines.append(f"\n{'PASSED' if report['passed'] else 'FAILED'}")
    return "\n".join(lines)


def rows(report: dict) -> str:
    """Markdown rows for the two tables of docs/benchmarks.md (Fulfillment)."""
    today = date.today().isoformat()
    out = ["Rows for docs/benchmarks.md:"]
    d = report.get("labels_drain")
    if d:
        k = d["killed"]
        c = {x["name"].split(" (")[0]: x for x in d["checks"]}
        at_provider = d["provider"]["transactions"] - d["provider"]["errors"]
        out.append(f"| {today} | {d['orders']:,} | 2 (concurrency {d['jobs_concurrency']}) | "
                   + (f"A after {k['after_labels']:,} labels ({k['purchasing_then']} purchasing)" if k else "none")
                   + f" | {d['heartbeat_s']:g} s | {at_provider:,} | {c['none twice']['value']} | "
                   f"{c['none missing']['value']} | {'yes' if c['every shipment label_created']['passed'] else 'NO'} | "
                   f"{d['drain_s']} s ({d['from_first_label_s']} s from the first label) | {d['labels_per_s']} |")
    for s in report.get("tracking_storm", []):
        lat = s["latency_ms"]
        ok = all(x["passed"] for x in s["checks"])
        out.append(f"| {today} | {s['route']} | {s['shipments']:,} | {s['sent']:,} ({s['duplicates']:,} dup) | "
                   f"{s['concurrency']} | {s['answers']} | {_ms(lat['p50'])} / {_ms(lat['p99'])} / {_ms(lat['max'])} | "
                   f"{s['per_s']} | {s['server_cpu_pct']} % / {s['postgres_cpu_pct']} % | "
                   f"{'all correct' if ok else 'WRONG'}"
                   + (f", applied {s['apply_drain_s']} s after the last answer" if s.get("apply_drain_s") is not None
                      else "") + " |")
    return "\n".join(out)
