"""`--html FILE`: one self-contained HTML page (inline CSS and SVG, no script, nothing fetched) with the
summary and the time series plotted: latency percentiles, viewers connected, messages per second, CPU."""
from __future__ import annotations

import html
import json
import math

from loadtests.report import latency_rows

W, H = 760, 230
PAD_L, PAD_R, PAD_T, PAD_B = 64, 16, 28, 34
COLORS = ["#2563eb", "#16a34a", "#ea580c", "#dc2626", "#7c3aed", "#0891b2", "#a16207", "#db2777"]


def _nice(v: float) -> float:
    """A round number >= v for the top of an axis."""
    if v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * exp:
            return m * exp
    return 10 * exp


def _fmt(v: float) -> str:
    if v >= 1000:
        return f"{v / 1000:g}k"
    return f"{v:g}"


PW, PH = W - PAD_L - PAD_R, H - PAD_T - PAD_B  # the plot area
NO_DATA = f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle" class="n">no data</text></svg>'


def _svg(title: str) -> list[str]:
    """The opening of a chart: the svg element and its title."""
    return [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
            f'role="img" aria-label="{html.escape(title)}">',
            f'<text x="{PAD_L}" y="18" class="t">{html.escape(title)}</text>']


def _sy(y: float, top: float) -> float:
    return PAD_T + PH - y / top * PH


def _y_axis(top: float, unit: str) -> str:
    """Horizontal grid lines labelled from 0 to `top`, and the unit along the y axis."""
    out = []
    for i in range(5):
        v = top * i / 4
        y = _sy(v, top)
        out.append(f'<line x1="{PAD_L}" y1="{y:.1f}" x2="{W - PAD_R}" y2="{y:.1f}" class="g"/>'
                   f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end" class="a">{_fmt(v)}</text>')
    out.append(f'<text x="14" y="{PAD_T + PH / 2}" transform="rotate(-90 14 {PAD_T + PH / 2})" '
               f'text-anchor="middle" class="a">{html.escape(unit)}</text>')
    return "".join(out)


def line_chart(title: str, unit: str, series: list[tuple[str, list[tuple[float, float | None]], bool]],
               marks: dict[str, float] | None = None) -> str:
    """An SVG line chart. series: (name, [(x, y or None)], dashed); a None y breaks the line."""
    xs = [x for _, pts, _ in series for x, _ in pts]
    ys = [y for _, pts, _ in series for _, y in pts if y is not None]
    out = _svg(title)
    if not xs or not ys:
        return "".join(out) + NO_DATA
    x0, x1 = min(xs), max(max(xs), min(xs) + 1)
    top = _nice(max(ys))

    def sx(x: float) -> float:
        return PAD_L + (x - x0) / (x1 - x0) * PW

    def sy(y: float) -> float:
        return _sy(y, top)

    out.append(_y_axis(top, unit))
    step = max(1, math.ceil((x1 - x0) / 10))
    for x in range(math.ceil(x0), math.floor(x1) + 1, step):
        out.append(f'<text x="{sx(x):.1f}" y="{H - PAD_B + 16}" text-anchor="middle" class="a">{x}s</text>')
    for name, x in (marks or {}).items():
        if x is not None and x0 <= x <= x1:
            out.append(f'<line x1="{sx(x):.1f}" y1="{PAD_T}" x2="{sx(x):.1f}" y2="{PAD_T + PH}" class="m"/>'
                       f'<text x="{sx(x) + 3:.1f}" y="{PAD_T + 10}" class="a">{html.escape(name)}</text>')
    for i, (name, pts, dashed) in enumerate(series):
        color = COLORS[i % len(COLORS)]
        segment: list[str] = []
        segments = []
        for x, y in pts:
            if y is None:
                if segment:
                    segments.append(segment)
                segment = []
            else:
                segment.append(f"{sx(x):.1f},{sy(y):.1f}")
        if segment:
            segments.append(segment)
        dash = ' stroke-dasharray="5 4"' if dashed else ""
        for seg in segments:
            if len(seg) == 1:
                cx, cy = seg[0].split(",")
                out.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{color}"/>')
            else:
                points = " ".join(seg)
                out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.8"{dash} points="{points}"/>')
        lx = PAD_L + 8 + i * 120
        out.append(f'<rect x="{lx}" y="{H - 12}" width="12" height="3" fill="{color}"/>'
                   f'<text x="{lx + 16}" y="{H - 8}" class="a">{html.escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def bar_chart(title: str, groups: list[tuple[str, dict]]) -> str:
    """Grouped bars: p50, p95, p99 and max of each latency (ms)."""
    keys = ("p50", "p95", "p99", "max")
    values = [g[k] for _, g in groups for k in keys if g.get(k) is not None]
    out = _svg(title)
    if not values:
        return "".join(out) + NO_DATA
    top = _nice(max(values))
    out.append(_y_axis(top, "ms"))
    slot = PW / len(groups)
    bar = min(28.0, slot / (len(keys) + 1))
    for gi, (label, g) in enumerate(groups):
        x0 = PAD_L + gi * slot + (slot - bar * len(keys)) / 2
        for ki, k in enumerate(keys):
            v = g.get(k)
            if v is None:
                continue
            h = v / top * PH
            out.append(f'<rect x="{x0 + ki * bar:.1f}" y="{PAD_T + PH - h:.1f}" width="{bar - 2:.1f}" height="{h:.1f}" '
                       f'fill="{COLORS[ki]}"><title>{html.escape(label)} {k} {v:g} ms</title></rect>')
        out.append(f'<text x="{PAD_L + gi * slot + slot / 2:.1f}" y="{H - PAD_B + 16}" text-anchor="middle" '
                   f'class="a">{html.escape(label)}</text>')
    for ki, k in enumerate(keys):
        lx = PAD_L + 8 + ki * 80
        out.append(f'<rect x="{lx}" y="{H - 12}" width="12" height="3" fill="{COLORS[ki]}"/>'
                   f'<text x="{lx + 16}" y="{H - 8}" class="a">{k}</text>')
    out.append("</svg>")
    return "".join(out)


def charts(r: dict) -> list[str]:
    tl = r.get("timeline") or []
    marks = r.get("phases")
    t = [row["t"] for row in tl]
    out = []
    if r["latency_ms"]["delivery"]["n"]:
        lat = [(k, [(x, row[k]) for x, row in zip(t, tl)], k == "max") for k in ("p50", "p95", "p99", "max")]
        out.append(line_chart("Delivery latency per second (sampled viewers)", "ms", lat, marks))
    out.append(bar_chart("Latency percentiles over the whole run", latency_rows(r)))
    out.append(line_chart("Viewers connected", "viewers", [("viewers", [(x, row["viewers"]) for x, row in zip(t, tl)],
                                                            False)], marks))
    if any(row["msgs_in"] for row in tl):
        out.append(line_chart("Messages per second", "msgs/s", [
            ("in: chat delivered", [(x, row["msgs_in"]) for x, row in zip(t, tl)], False)], marks))
    out.append(line_chart("Events sent per second (joins, chat, reactions, cart)", "events/s", [
        ("out: sent", [(x, row["msgs_out"]) for x, row in zip(t, tl)], False)], marks))
    procs = max((len(row["gen_cpu"]) for row in tl), default=0)
    cpu = [(f"generator #{k}", [(x, row["gen_cpu"][k] if k < len(row["gen_cpu"]) else None)
                                for x, row in zip(t, tl)], False) for k in range(procs)]
    if any(row.get("server_cpu") is not None for row in tl):
        cpu.append(("server", [(x, row.get("server_cpu")) for x, row in zip(t, tl)], True))
    out.append(line_chart("CPU (% of one core)", "% cpu", cpu, marks))
    return out


def _kv_table(title: str, d: dict | None) -> str:
    if not d:
        return ""
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_cell(v))}</td></tr>" for k, v in d.items())
    return f"<h2>{html.escape(title)}</h2><table>{rows}</table>"


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:,.3f}".rstrip("0").rstrip(".")
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return "-" if v is None else str(v)


def _rooms_table(rooms: dict | None) -> str:
    """The small rooms of --rooms: the worst figures, then one row per room."""
    if not rooms:
        return ""
    cols = ("joined", "sent", "expected", "delivered", "delivered_ratio", "p50_ms", "p99_ms", "max_ms", "duplicates")
    rows = "".join(f"<tr><th>{html.escape(slug)}</th>" + "".join(f"<td>{_cell(x.get(k))}</td>" for k in cols)
                   + "</tr>" for slug, x in rooms["per_room"].items())
    head = "".join(f"<th>{k}</th>" for k in cols)
    return (_kv_table(f"Small rooms ({rooms['count']})", {k: v for k, v in rooms.items() if k != "per_room"})
            + f"<table><tr><th>room</th>{head}</tr>{rows}</table>")


def render(r: dict) -> str:
    lat = "".join(f"<tr><th>{html.escape(name)}</th>" + "".join(f"<td>{_cell(s.get(k))}</td>" for k in
                  ("n", "p50", "p95", "p99", "max")) + "</tr>" for name, s in latency_rows(r))
    verdicts = "".join(f'<tr class="{"ok" if c["passed"] else "bad"}"><th>{html.escape(c["name"])}</th>'
                       f'<td>{_cell(c["value"])}</td><td>{_cell(c.get("limit"))}</td>'
                       f'<td>{"pass" if c["passed"] else "FAIL"}</td></tr>' for c in r["thresholds"] + r["checks"])
    gen = r["generator"]
    gen_rows = "".join(f"<tr><th>#{p['proc']} (pid {p['pid']})</th><td>{_cell(p['viewers'])}</td>"
                       f"<td>{_cell(p['join_cpu_pct'])}</td><td>{_cell(p['run_cpu_pct'])}</td>"
                       f"<td>{_cell(p['total_cpu_pct'])}</td></tr>" for p in gen["procs"])
    gen_rows += (f"<tr><th>total ({_cell(gen['total_cpu_s'])} CPU s with the parent)</th><td></td>"
                 f"<td>{_cell(gen['total_join_cpu_pct'])}</td><td>{_cell(gen['total_run_cpu_pct'])}</td><td></td></tr>")
    saturated = ('<p class="bad">Generator saturated: a process was above 85 % of a core; the latencies may be '
                 'the generator\'s, not the server\'s. Use more --procs.</p>' if gen["saturated"] else "")
    sections = [
        _kv_table("Parameters", r["params"]),
        _kv_table("Viewers", r["viewers"]),
        _kv_table("Chat delivery", r.get("delivery")),
        _rooms_table(r.get("rooms")),
        _kv_table("Flash sale", r.get("flash_sale")),
        _kv_table("Reconnect", r.get("reconnect")),
        f"<h2>Latency (ms)</h2><table><tr><th></th><th>n</th><th>p50</th><th>p95</th><th>p99</th><th>max</th></tr>"
        f"{lat}</table>",
        _kv_table("Errors", r["errors"] or {"none": 0}),
        _kv_table("Server (process probe)", r.get("server")),
        _kv_table("Server (its /metrics, during the run)", r.get("server_metrics")),
        f"<h2>Generator</h2>{saturated}<table><tr><th>process</th><th>viewers</th><th>CPU % joining</th>"
        f"<th>CPU % running</th><th>CPU % overall</th></tr>{gen_rows}</table>",
        f"<h2>Thresholds and checks</h2><table><tr><th></th><th>value</th><th>limit</th><th></th></tr>{verdicts}"
        "</table>",
    ]
    title = f"live-loadtest {r['scenario']}: {r['target']} ({r['started_at']})"
    status = "passed" if r["passed"] else "FAILED"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px auto; max-width: 800px; color: #111; }}
h1 {{ font-size: 20px; }} h2 {{ font-size: 16px; margin-top: 28px; }}
table {{ border-collapse: collapse; }} th, td {{ text-align: left; padding: 2px 12px 2px 0; vertical-align: top; }}
th {{ font-weight: 600; }} td {{ font-variant-numeric: tabular-nums; }}
.ok td:last-child {{ color: #15803d; }} .bad, .bad td:last-child {{ color: #b91c1c; font-weight: 600; }}
svg {{ display: block; margin: 12px 0; background: #fafafa; border: 1px solid #eee; }}
svg .t {{ font: 600 13px system-ui, sans-serif; }} svg .a {{ font: 11px system-ui, sans-serif; fill: #555; }}
svg .n {{ font: 13px system-ui, sans-serif; fill: #999; }} svg .g {{ stroke: #e5e5e5; }}
svg .m {{ stroke: #999; stroke-dasharray: 2 3; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="{"ok" if r["passed"] else "bad"}">Result: {status}. Wall time {r["wall_s"]} s.</p>
{"".join(charts(r))}
{"".join(sections)}
</body></html>
"""


def write_html(report: dict, path: str) -> None:
    with open(path, "w") as f:
        f.write(render(report))
