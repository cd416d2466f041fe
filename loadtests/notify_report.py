"""The notification benchmark's text: a summary per run and the markdown rows of docs/benchmarks.md."""
from __future__ import annotations

from datetime import date


def _s(v) -> str:
    return "-" if v is None else f"{v:.2f} s"


def _ms(v) -> str:
    return "-" if v is None else f"{v:,.0f} ms"


def _pct(v) -> str:
    return "-" if v is None else f"{v:.0f} %"


def _worker(cpu: dict) -> str:
    """The job workers' CPU: one value, or each (`live worker` processes)."""
    shares = [v for k, v in sorted(cpu.items()) if k.startswith("worker")]
    return " + ".join(_pct(v) for v in shares) if shares else "-"


def _run(r: dict) -> list[str]:
    e, m, n, c = r["enqueue"], r["mail"], r["notices"], r["chat"]
    lat = n["latency_ms"]
    lines = [
        f"run {r['run']}: {r['followers']:,} followers, {r['online']:,} online; start answered "
        f"{r['start']['status']} in {r['start']['answer_ms']} ms",
        f"  enqueued: notifications {_s(e['notifications_s'])}, outbox rows + email.send jobs {_s(e['outbox_s'])} "
        f"({e.get('email_jobs_then', '-')} jobs)",
        f"  mail: {m['messages']:,} at the sink ({m['distinct_message_ids']:,} distinct Message-IDs, at most "
        f"{m['max_per_recipient']} per recipient), first {_s(m['first_s'])}, last {_s(m['last_s'])}; "
        f"{m['per_s'] or '-'} /s first to last, {m['per_s_from_t0'] or '-'} /s from the start",
        f"  notification:new: {n['received']:,} of {n['expected']:,} online; p50 {_ms(lat['p50'])}, "
        f"p99 {_ms(lat['p99'])}, max {_ms(lat['max'])} after the start",
        f"  room chat p99: before {_ms(c['before']['p99'])} (n {c['before']['n']}), fan-out (to {r['fanout_s']} s) "
        f"{_ms(c['fanout']['p99'])} (n {c['fanout']['n']}), mail drain {_ms(c['mail']['p99'])} (n {c['mail']['n']}), "
        f"after {_ms(c['after']['p99'])} (n {c['after']['n']}); delivered "
        f"{c['delivery'].get('delivered_ratio')}" + (" [chat ended before the work did]" if c["during_truncated"]
                                                     else ""),
        f"  CPU over the {r['window_s']:.1f} s window: server {_pct(r['cpu_pct']['server'])}, worker "
        f"{_worker(r['cpu_pct'])}, PostgreSQL {_pct(r['cpu_pct']['postgres'])}, sink {_pct(r['sink_cpu_pct'])}",
    ]
    if r.get("server_cpu_by_second"):
        lines.append("  server CPU % by second from the start: "
                     + " ".join(f"{t}:{v}" for t, v in r["server_cpu_by_second"]))
    if r.get("email_jobs_by_time"):
        lines.append("  email.send jobs (s: queued/picked): "
                     + " ".join(f"{t}:{q}/{p}" for t, q, p in r["email_jobs_by_time"][::4]))
    steps = r.get("steps") or {}
    for entry, by in sorted((steps.get("jobs") or {}).items(), key=lambda kv: min(
            (v["first"] for v in kv[1].values() if v["first"] is not None), default=0)):
        lines.append(f"  job {entry}: " + ", ".join(
            f"{st} {v['n']} ({v['first']}..{v['last']} s)" for st, v in by.items()))
    if steps.get("rows"):
        lines.append("  row transactions (s from the start): "
                     + ", ".join(f"{k} {v}" for k, v in steps["rows"].items()))
    for t in r["targets"]:
        verdict = "" if t["passed"] is None else (" met" if t["passed"] else " MISSED")
        lines.append(f"  target {t['name']}: {t['value']} (limit {t['limit']}){verdict}")
    for c in r["checks"]:
        if not c["passed"]:
            lines.append(f"  CHECK FAILED {c['name']}: {c['value']}")
    return lines


def summary(report: dict, brief: bool = False) -> str:
    lines = [] if brief else [f"live-loadtest notify, {report.get('started_at')}, load average "
                              f"{report.get('machine', {}).get('load_average')}"]
    for r in report["runs"]:
        lines += _run(r)
    if not brief:
        lines.append("PASSED" if report.get("passed") else "FAILED (a check failed; see notify.json)")
    return "\n".join(lines)


def rows(report: dict) -> str:
    """The table rows: date, jobs, followers / online, enqueued (notices / mails), mails at the sink, mails/s,
    notification:new, chat p99 before / fan-out / mail drain / after, CPU server / worker / PostgreSQL / sink, load."""
    workers = report["params"].get("job_workers") or 1
    mode = ("live worker" if workers == 1 else f"{workers} live workers") if report["params"].get("worker") \
        else "in process"
    if report["params"].get("async_commit"):
        mode += ", synchronous_commit off"
    load = report.get("machine", {}).get("load_average", ["?"])[0]
    out = []
    for r in report["runs"]:
        e, m, n, c, cpu = r["enqueue"], r["mail"], r["notices"], r["chat"], r["cpu_pct"]
        lat = n["latency_ms"]
        out.append(
            f"| {date.today().isoformat()} | {mode} (concurrency {report['params'].get('jobs_concurrency')}) | "
            f"{r['followers']:,} / {r['online']:,} | {_s(e['notifications_s'])} / {_s(e['outbox_s'])} | "
            f"{m['messages']:,} ({m['distinct_message_ids']:,} ids) | {m['per_s'] or '-'} | "
            f"{n['received']:,}: {_ms(lat['p50'])} / {_ms(lat['p99'])} / {_ms(lat['max'])} | "
            f"{_ms(c['before']['p99'])} / {_ms(c['fanout']['p99'])} / {_ms(c['mail']['p99'])} / "
            f"{_ms(c['after']['p99'])} | "
            f"{_pct(cpu['server'])} / {_worker(cpu)} / {_pct(cpu['postgres'])} / {_pct(r['sink_cpu_pct'])} | "
            f"{load} |")
    return "\n".join(out)
