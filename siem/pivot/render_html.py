"""`siem pivot --html`: a self-contained incident timeline page an analyst can attach to a ticket.

One file, no external assets and no network: inline CSS, an inline SVG chart of every matching event
over time stacked by dataset (a store-side histogram, not only the page of rows), the entity summary
(per-dataset counts, first/last seen, roles, co-occurring users / IPs), the alerts naming the entity,
and the timeline table with client-side filters (a dataset selector and a text box; a small inline
script hides rows, it never builds markup).
Every value comes from logs an attacker can write to, so every value goes through ``html.escape``;
the data is only ever in text nodes and quoted attributes, never in the script.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from siem.pivot.query import PivotResult
from siem.pivot.render_table import format_time, row_cells
from siem.pivot.summary import get

PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd",
)  # fmt: skip
CHART_W, CHART_H, PAD = 960, 220, 40

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:3px 6px;text-align:left;
vertical-align:top}th{background:#f3f3f3}td.what{font-family:ui-monospace,monospace;word-break:break-all}
.muted{color:#666}.failure td{background:#fff0f0}.swatch{display:inline-block;width:10px;height:10px;margin-right:4px}
#filters{margin:8px 0}#filters input{width:320px}svg{border:1px solid #ddd;background:#fff}
"""
_SCRIPT = """
(function(){
  var sel=document.getElementById('f-dataset'), txt=document.getElementById('f-text'),
      rows=document.querySelectorAll('#timeline tbody tr'), shown=document.getElementById('shown');
  function apply(){
    var ds=sel.value, q=txt.value.toLowerCase(), n=0;
    for(var i=0;i<rows.length;i++){
      var r=rows[i], ok=(!ds||r.getAttribute('data-dataset')===ds)&&(!q||r.textContent.toLowerCase().indexOf(q)>=0);
      r.style.display=ok?'':'none'; if(ok)n++;
    }
    shown.textContent=String(n);
  }
  sel.addEventListener('change',apply); txt.addEventListener('input',apply); apply();
})();
"""


def e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _colors(datasets: list[str]) -> dict[str, str]:
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(sorted(datasets))}


def chart(result: PivotResult, colors: dict[str, str], zone: ZoneInfo | None) -> str:
    """Stacked bars: every matching event (not only the page) per time bin and dataset, as inline SVG."""
    counts, bins = result.histogram, result.bins
    if not counts or bins is None or not any(counts):
        return '<p class="muted">no events to chart</p>'
    peak = max(sum(c.values()) for c in counts)
    bar_w = (CHART_W - 2 * PAD) / bins.count
    parts = [
        f'<svg id="chart" xmlns="http://www.w3.org/2000/svg" width="{CHART_W}" height="{CHART_H}" '
        f'viewBox="0 0 {CHART_W} {CHART_H}" role="img" aria-label="events over time by dataset">',
        f'<line x1="{PAD}" y1="{CHART_H - PAD}" x2="{CHART_W - PAD}" y2="{CHART_H - PAD}" stroke="#999"/>',
        f'<text x="{PAD}" y="{PAD - 12}" font-size="11" fill="#666">max {peak} events per bar</text>',
    ]
    scale = (CHART_H - 2 * PAD) / peak
    for i, bucket in enumerate(counts):
        y = CHART_H - PAD
        start = _when(bins.start_ms + i * bins.width_ms, zone)
        for dataset in sorted(bucket):
            h = bucket[dataset] * scale
            y -= h
            parts.append(
                f'<rect x="{PAD + i * bar_w + 1:.1f}" y="{y:.1f}" width="{max(bar_w - 2, 1):.1f}" height="{h:.1f}" '
                f'fill="{colors.get(dataset, "#888")}"><title>{e(dataset)}: {bucket[dataset]} from {e(start)}'
                "</title></rect>"
            )
    for x, ms in ((PAD, bins.start_ms), (CHART_W - PAD, bins.start_ms + bins.count * bins.width_ms)):
        anchor = "start" if x == PAD else "end"
        parts.append(
            f'<text x="{x}" y="{CHART_H - PAD + 16}" font-size="11" text-anchor="{anchor}">{e(_when(ms, zone))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _when(ms: int, zone: ZoneInfo | None) -> str:
    return format_time((datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)).isoformat(), zone)


def _summary(result: PivotResult, colors: dict[str, str], zone: ZoneInfo | None) -> str:
    rows = "".join(
        f'<tr><td><span class="swatch" style="background:{colors.get(s.dataset, "#888")}"></span>{e(s.dataset)}</td>'
        f"<td>{s.count}</td><td>{e(format_time(s.first, zone))}</td><td>{e(format_time(s.last, zone))}</td>"
        f"<td>{e(', '.join(s.roles) or 'related')}</td></tr>"
        for s in result.datasets
    )
    out = (
        '<table id="datasets"><thead><tr><th>dataset</th><th>events</th><th>first seen</th><th>last seen</th>'
        f"<th>as</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    titles = {"users": "Users seen with it", "ips": "IPs seen with it"}
    for kind, pairs in (result.expand or {}).items():
        items = "".join(f"<li>{e(value)} <span class='muted'>({count})</span></li>" for value, count in pairs)
        out += f'<h2>{titles[kind]}</h2><ul id="expand-{kind}">{items or "<li>none</li>"}</ul>'
    return out


def _alerts(result: PivotResult, zone: ZoneInfo | None) -> str:
    if not result.alerts:
        return '<p id="alerts" class="muted">No alert names this entity.</p>'
    rows = "".join(
        f"<tr><td>{e(format_time(get(a, 'alert.last_seen'), zone))}</td><td>{e(get(a, 'rule.name'))}</td>"
        f"<td>{e(get(a, 'rule.level'))}</td><td>{e(get(a, 'alert.status'))}</td><td>{e(get(a, 'alert.count'))}</td>"
        f"<td>{e(get(a, 'alert.reason'))}</td></tr>"
        for a in result.alerts
    )
    return (
        '<table id="alerts"><thead><tr><th>last seen</th><th>rule</th><th>level</th><th>status</th><th>events</th>'
        f"<th>reason</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _timeline(result: PivotResult, zone: ZoneInfo | None) -> str:
    body = []
    for doc in result.rows:
        c = row_cells(doc, zone)
        failed = ' class="failure"' if get(doc, "event.outcome") == "failure" else ""
        body.append(
            f'<tr data-dataset="{e(c["dataset"])}"{failed}><td>{e(c["time"])}</td><td>{e(c["dataset"])}</td>'
            f"<td>{e(c['source'])}</td><td>{e(c['user'])}</td><td class='what'>{e(c['what'])}</td>"
            f"<td>{e(c['host'])}</td><td>{e(c['account'])}</td><td>{e(c['log'])}</td></tr>"
        )
    options = "".join(f'<option value="{e(s.dataset)}">{e(s.dataset)}</option>' for s in result.datasets)
    return (
        '<div id="filters"><label>dataset <select id="f-dataset"><option value="">all</option>'
        f'{options}</select></label> <label>contains <input id="f-text" type="search"></label> '
        f'<span class="muted"><span id="shown">{len(result.rows)}</span> rows shown</span></div>'
        '<table id="timeline"><thead><tr><th>time</th><th>dataset</th><th>source</th><th>user</th><th>what</th>'
        f"<th>host</th><th>account</th><th>log file:offset</th></tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def render_html(result: PivotResult, zone: ZoneInfo | None) -> str:
    q = result.query
    colors = _colors([s.dataset for s in result.datasets])
    legend = " ".join(
        f'<span><span class="swatch" style="background:{c}"></span>{e(name)}</span>' for name, c in colors.items()
    )
    first = q.offset + 1 if result.rows else 0
    window = f"from {q.start or 'the start'} until {q.end or 'now'}" if q.start or q.end else "all time"
    scope = (
        f"{result.total} events in {len(result.datasets)} datasets; rows {first}–{q.offset + len(result.rows)} "
        f"shown ({'newest' if q.newest else 'oldest'} first), {e(window)}, "
        f"store {e(result.store)}, times in {e(str(zone) if zone else 'UTC')}"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "script-src 'unsafe-inline'\">"
        f"<title>Incident timeline: {e(q.entity.label())}</title><style>{_CSS}</style></head><body>"
        f'<h1 id="entity">Incident timeline: {e(q.entity.label())}</h1><p class="muted" id="scope">{scope}</p>'
        f"<h2>Events over time</h2>{chart(result, colors, zone)}<div>{legend}</div>"
        f"<h2>Summary</h2>{_summary(result, colors, zone)}"
        f"<h2>Alerts</h2>{_alerts(result, zone)}"
        f"<h2>Timeline</h2>{_timeline(result, zone)}"
        f"<script>{_SCRIPT}</script></body></html>\n"
    )
