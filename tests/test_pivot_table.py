"""The pivot table fits a terminal: columns stay aligned whatever the values (IPv6, long names, long
paths), long values end in an ellipsis, times are UTC unless a zone is asked for."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from siem.pivot.query import DatasetStats, PivotQuery, PivotResult, ip_entity
from siem.pivot.render_table import COLUMNS, render_table

V6 = "2001:db8:ffff:ffff:ffff:ffff:ffff:fffe"  # 38 characters
LONG_PATH = "s3://bucket/AWSLogs/123456789012/elasticloadbalancing/eu-west-1/2024/01/02/" + "x" * 80 + ".log.gz"


def _doc(ts: str, ip: str, user: str, path: str, outcome: str = "success") -> dict:
    return {
        "_id": ts,
        "@timestamp": ts,
        "event": {"dataset": "aws.alb", "outcome": outcome},
        "source": {"ip": ip},
        "user": {"name": user},
        "http": {"request": {"method": "GET"}, "response": {"status_code": 200}},
        "url": {"original": "/" + "a" * 300},
        "log": {"file": {"path": path}, "offset": 7},
    }


def _result(rows: list[dict]) -> PivotResult:
    stats = [DatasetStats("aws.alb", len(rows), rows[0]["@timestamp"], rows[-1]["@timestamp"], ["source"])]
    return PivotResult(PivotQuery(ip_entity("2001:db8::/32")), "embedded", len(rows), stats, rows)


ROWS = [
    _doc("2024-01-02T03:04:05Z", "10.0.0.1", "bob", "a.log"),
    _doc("2024-01-02T03:04:06.250Z", V6, "a-very-long-user-name-from-an-identity-provider@example.com", LONG_PATH),
    _doc("2024-01-02T03:04:07Z", "::1", "", "b.log", outcome="failure"),
]


def test_columns_stay_aligned_with_ipv6_and_long_values() -> None:
    lines = render_table(_result(ROWS), None, color=False).splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("time "))
    rows = lines[header + 1 :]
    assert len(rows) == 3
    what_at = lines[header].index("what")
    for row in rows:
        assert row[what_at:].startswith("GET /aaa"), row  # the last column starts at the same place
        assert len(row) <= sum(cap for cap, _ in COLUMNS.values()) + 2 * (len(COLUMNS) - 1)
    assert V6 in rows[1]  # an IPv6 address is never cut
    assert "a-very-long-user-na…" in rows[1]  # user column capped at 20 with an ellipsis
    assert "…" + "x" * 20 in rows[1] and ".log.gz:7" in rows[1]  # paths keep their end
    assert rows[1].split()[0] == "2024-01-02T03:04:06.250Z"


def test_times_in_the_requested_zone_and_colour_only_when_asked() -> None:
    plain = render_table(_result(ROWS), ZoneInfo("America/New_York"), color=False)
    assert "2024-01-01T22:04:05-05:00" in plain and "\x1b[" not in plain
    coloured = render_table(_result(ROWS), None, color=True)
    assert "\x1b[31m2024-01-02T03:04:07Z" in coloured  # the failed request is red


def test_on_a_terminal_rows_fit_its_width_and_empty_columns_are_left_out() -> None:
    lines = render_table(_result(ROWS), None, color=False, terminal_width=200).splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("time "))
    assert "host" not in lines[header].split() and "account" not in lines[header].split()  # empty everywhere
    assert all(len(line) <= 200 for line in lines[header:]), max(len(line) for line in lines[header:])
    assert lines[header + 1].endswith("…")  # the long URL is cut to the terminal
