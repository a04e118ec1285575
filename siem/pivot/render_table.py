"""Terminal, CSV and JSON output of a pivot.

The table fits a terminal: each column is as wide as its widest value up to a cap, longer values
end in an ellipsis (file paths lose their *start*, where the distinguishing name is at the end), and
an IPv6 address (39 characters at most) always fits its column. Colour only when writing to a
terminal, never with --no-color or $NO_COLOR. Times are UTC unless a zone is given.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from siem.pivot.query import PivotResult
from siem.pivot.summary import account, get, host, location, what

ELLIPSIS = "…"
# column -> (cap, truncate from the left)
COLUMNS: dict[str, tuple[int, bool]] = {
    "time": (32, False),
    "dataset": (22, False),
    "source": (39, False),
    "user": (20, False),
    "host": (24, False),
    "account": (14, False),
    "log": (40, True),
    "what": (110, False),
}
ALWAYS = ("time", "dataset", "what")
CSV_FIELDS = ("time", "dataset", "source", "destination", "user", "what", "host", "account", "file", "offset", "id")
_COLORS = {"failure": "\x1b[31m", "header": "\x1b[1m", "dataset": "\x1b[36m", "reset": "\x1b[0m"}


def format_time(value: str | None, zone: ZoneInfo | None) -> str:
    """ISO 8601 in UTC (Z) or in the given zone (with its offset); milliseconds when present."""
    if not value:
        return ""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if zone is not None:
        parsed = parsed.astimezone(zone)
    spec = "milliseconds" if parsed.microsecond else "seconds"
    return parsed.isoformat(timespec=spec).replace("+00:00", "Z")


def clip(text: str, width: int, left: bool = False) -> str:
    if len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    return ELLIPSIS + text[-(width - 1) :] if left else text[: width - 1] + ELLIPSIS


def row_cells(doc: dict[str, Any], zone: ZoneInfo | None) -> dict[str, str]:
    return {
        "time": format_time(doc.get("@timestamp"), zone),
        "dataset": str(get(doc, "event.dataset") or ""),
        "source": str(get(doc, "source.ip") or get(doc, "client.ip") or ""),
        "user": str(get(doc, "user.name") or ""),
        "host": host(doc),
        "account": account(doc),
        "log": location(doc),
        "what": what(doc),
    }


def _widths(rows: Sequence[dict[str, str]], terminal_width: int | None) -> dict[str, int]:
    """Each column as wide as its widest value, capped; columns empty on every row are left out, and on
    a terminal "what" gets the rest of the line (at least 30 characters)."""
    widths = {
        name: min(cap, max([len(name)] + [len(r[name]) for r in rows]))
        for name, (cap, _left) in COLUMNS.items()
        if name in ALWAYS or any(r[name] for r in rows)
    }
    if terminal_width:
        used = sum(w for name, w in widths.items() if name != "what") + 2 * (len(widths) - 1)
        widths["what"] = min(widths["what"], max(30, terminal_width - used))
    return widths


def _line(cells: dict[str, str], widths: dict[str, int]) -> str:
    return "  ".join(clip(cells[n], w, COLUMNS[n][1]).ljust(w) for n, w in widths.items()).rstrip()


class Painter:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, style: str) -> str:
        return f"{_COLORS[style]}{text}{_COLORS['reset']}" if self.enabled else text


def render_table(result: PivotResult, zone: ZoneInfo | None, color: bool, terminal_width: int | None = None) -> str:
    paint = Painter(color)
    out: list[str] = []
    q = result.query
    out.append(paint(f"{q.entity.label()}: {result.total} events in {len(result.datasets)} datasets", "header"))
    if result.datasets:
        name_w = min(30, max(len("dataset"), *(len(s.dataset) for s in result.datasets)))
        time_w = max(len("first seen"), *(len(format_time(s.first, zone)) for s in result.datasets))
        out.append(f"  {'dataset':{name_w}}  {'events':>8}  {'first seen':{time_w}}  {'last seen':{time_w}}  as")
        for s in result.datasets:
            out.append(
                f"  {paint(clip(s.dataset, name_w).ljust(name_w), 'dataset')}  {s.count:>8}  "
                f"{format_time(s.first, zone):{time_w}}  {format_time(s.last, zone):{time_w}}  "
                f"{', '.join(s.roles) or 'related'}"
            )
    if result.rows:
        cells = [row_cells(doc, zone) for doc in result.rows]
        widths = _widths(cells, terminal_width)
        out.append("")
        out.append(paint(_line({n: n for n in COLUMNS}, widths), "header"))
        for doc, row in zip(result.rows, cells, strict=True):
            line = _line(row, widths)
            failed = get(doc, "event.outcome") == "failure"
            out.append(paint(line, "failure") if failed else line)
    out += _expand_lines(result) + _alert_lines(result, zone)
    return "\n".join(out)


def _expand_lines(result: PivotResult) -> list[str]:
    if result.expand is None:
        return []
    out: list[str] = []
    titles = {"users": "users seen with it", "ips": "IPs seen with it"}
    for kind, pairs in result.expand.items():
        out += ["", f"{titles[kind]} ({len(pairs)}):"]
        out += [f"  {count:>8}  {value}" for value, count in pairs] or ["  (none)"]
    return out


def _alert_lines(result: PivotResult, zone: ZoneInfo | None) -> list[str]:
    if result.alerts is None:
        return []
    out = ["", f"alerts naming it ({len(result.alerts)}):"]
    for doc in result.alerts:
        alert = doc.get("alert", {})
        out.append(
            f"  {format_time(alert.get('last_seen'), zone)}  {alert.get('status', '')!s:12} "
            f"{get(doc, 'rule.level') or ''!s:8} {clip(str(get(doc, 'rule.name') or ''), 60)}"
        )
    return out if result.alerts else [*out, "  (none)"]


def render_csv(result: PivotResult, zone: ZoneInfo | None) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for doc in result.rows:
        writer.writerow(
            [
                format_time(doc.get("@timestamp"), zone),
                get(doc, "event.dataset") or "",
                get(doc, "source.ip") or get(doc, "client.ip") or "",
                get(doc, "destination.ip") or "",
                get(doc, "user.name") or "",
                what(doc),
                host(doc),
                account(doc),
                get(doc, "log.file.path") or "",
                get(doc, "log.offset") if get(doc, "log.offset") is not None else "",
                doc.get("_id", ""),
            ]
        )
    return buffer.getvalue().rstrip("\n")


def render_json(result: PivotResult) -> str:
    """One event per line (NDJSON), each with ``_what``: what scripts and `jq` read."""
    return "\n".join(orjson.dumps({**doc, "_what": what(doc)}).decode() for doc in result.rows)
