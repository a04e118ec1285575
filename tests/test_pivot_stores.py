"""`siem pivot` on both stores: one IP across six AWS/web datasets, a user across four whatever the
case typed, CIDR, trace ids, --expand, paging (OpenSearch past 10,000 hits), and the same rows from
DuckDB and the real OpenSearch.

The fixture is cut from the bundled samples, with the client IP of a few lines rewritten so that one
IP (89.160.20.156) is the client of an ALB request, a WAF request, an nginx request, VPC flows, a
Route 53 query and CloudTrail calls. It is loaded once per module through `siem load` into each store.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

import pytest

from siem.cli import main
from siem.detect.state import EmbeddedState
from siem.pipeline import Event
from siem.pivot.query import Entity, PivotQuery, ip_entity, run_pivot
from siem.sinks.embedded import EmbeddedStore
from siem.sinks.opensearch import OpenSearchStore
from siem.templates import load_templates

SAMPLES = Path(__file__).parent / "data" / "samples" / "logs"
IP = "89.160.20.156"
# (sample, 1-based line numbers, replacements) -> fixture file under the same type directory
IP_LINES = [
    ("alb/test-alb.log", [1, 2], {"192.168.131.39": IP}),  # line 2 keeps its other IP: noise
    ("waf/test-waf.log", [1, 2, 3, 4], {}),
    ("nginx_access/test-access.log", [1], {"67.43.156.13": IP}, "nginx/access.log"),
    ("vpcflow/test-extra-samples.log", [1, 4, 5, 6, 7], {}),  # line 1 is an IPv6 flow: noise
    ("route53_resolver/test-route53.log", [1], {"172.31.86.159": IP}),
    ("cloudtrail/test-console-login-json.log", [1, 2, 3], {}),
]
NEIGHBOURS = [  # one address inside 89.160.20.0/24, one outside
    ("nginx_access/test-access.log", [2], {"67.43.156.13": "89.160.20.7"}, "nginx/near.log"),
    ("nginx_access/test-access.log", [3], {"67.43.156.13": "89.160.21.1"}, "nginx/far.log"),
]
USER_LINES = [
    ("cloudtrail/test-create-user-json.log", [1], {}),  # Alice creates Bob
    ("auth/test-auth.log", [2], {"vagrant": "ALICE"}),
    ("auditd/test-auditd-raw.log", [25], {'acct="admin"': 'acct="aLiCe"', IP: "192.0.2.50"}),
]


def _alert(alert_id: str, last_seen: str, ips: list[str], users: list[str]) -> dict:
    """An alert as the detection runner stores it (the fields the pivot reads)."""
    return {
        "@timestamp": last_seen,
        "rule": {"id": f"rule-{alert_id}", "name": f"Rule {alert_id}", "level": "high"},
        "related": {"ip": ips, "user": users},
        "alert": {"id": alert_id, "status": "open", "last_seen": last_seen, "count": 1, "reason": "test"},
    }


ALERTS = [
    _alert("a-ip", "2024-01-02T00:00:00Z", [IP], []),
    _alert("a-user", "2024-01-03T00:00:00Z", ["192.0.2.50"], ["Alice"]),
    _alert("a-other", "2024-01-04T00:00:00Z", ["89.160.21.1"], ["bob"]),
]
EXPECTED_IP = {  # written by hand from the lines above
    "aws.alb": 1,
    "aws.waf": 4,
    "nginx.access": 1,
    "aws.vpcflow": 4,
    "aws.route53_resolver": 1,
    "aws.cloudtrail": 3,
}


def _cut(root: Path, relative: str, lines: list[int], replace: dict[str, str], target: str | None = None) -> None:
    text = (SAMPLES / relative).read_text().splitlines()
    out = []
    for n in lines:
        line = text[n - 1]
        for old, new in replace.items():
            line = line.replace(old, new)
        out.append(line)
    path = root / (target or relative)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write("\n".join(out) + "\n")


def build_fixture(root: Path) -> tuple[Path, Path]:
    """Two folders: auto-detected logs, and nginx access lines (which read as Apache's without --type)."""
    auto, nginx = root / "auto", root / "nginx"
    for relative, lines, replace, *target in IP_LINES + USER_LINES + NEIGHBOURS:
        folder = nginx if target else auto
        _cut(folder, relative, lines, replace, target[0].removeprefix("nginx/") if target else None)
    k8s = json.loads((SAMPLES / "k8s_audit/create_deployment.json").read_text().replace("minikube-user", "alice"))
    (auto / "k8s_audit").mkdir()
    (auto / "k8s_audit" / "create_deployment.json").write_text(json.dumps(k8s))
    return auto, nginx


class _OneIndex(OpenSearchStore):
    """Every event in one index of the events pattern: creating the store's per-dataset indices (and the
    templates' dead-letter and alert indices) costs seconds each on the shared node, and the pivot must
    not care what follows ``-events-``. The index gets the events template's settings and mappings."""

    def index_for(self, event: Event) -> str:
        return f"{self.prefix}-events-pivotfixture"

    def create(self) -> None:
        components, _ = load_templates(self.prefix)
        body = {
            "settings": components[f"{self.prefix}-settings"]["template"]["settings"],
            "mappings": components[f"{self.prefix}-ecs"]["template"]["mappings"],
        }
        self.client.indices.create(index=f"{self.prefix}-events-pivotfixture", body=body)

    def create_alerts(self, alerts: list[dict]) -> None:
        """The alerts index with the alerts template's mappings, holding these alerts."""
        _, indexes = load_templates(self.prefix)
        mappings = indexes[f"{self.prefix}-alerts"]["template"]["mappings"]
        self.client.indices.create(index=f"{self.prefix}-alerts", body={"mappings": mappings})
        for alert in alerts:
            self.client.index(index=f"{self.prefix}-alerts", id=alert["alert"]["id"], body=alert)


@pytest.fixture(scope="module")
def stores(tmp_path_factory, opensearch_url, opensearch_client):
    """The fixture loaded into an embedded store and into a real OpenSearch prefix, through `siem load`."""
    auto, nginx = build_fixture(tmp_path_factory.mktemp("pivot-logs"))
    data_dir = tmp_path_factory.mktemp("pivot-data")
    prefix = "tpivotstores"
    opensearch_client.indices.delete(index=f"{prefix}-*", params={"ignore_unavailable": "true", "ignore": 404})
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("SIEM_OPENSEARCH_URL", raising=False)
        mp.setenv("SIEM_DATA_DIR", str(data_dir))
        assert main(["load", str(auto)]) == 0
        assert main(["load", str(nginx), "--type", "nginx.access"]) == 0
    writer = EmbeddedStore(data_dir)
    EmbeddedState(writer.db).save(ALERTS, {})
    writer.close()
    embedded = EmbeddedStore(data_dir, read_only=True)
    # the very documents the loader stored, written to OpenSearch through the store's bulk path
    search = _OneIndex(opensearch_client, prefix=prefix)
    search.create()
    rows = embedded.db.execute("SELECT id, dataset, doc FROM events").fetchall()
    assert not search.write([Event(i, d, json.loads(doc)) for i, d, doc in rows])
    search.create_alerts(ALERTS)
    search.refresh()
    yield {"embedded": embedded, "opensearch": search, "data_dir": data_dir, "prefix": prefix}
    embedded.close()
    opensearch_client.indices.delete(index=f"{prefix}-*", params={"ignore_unavailable": "true", "ignore": 404})


def both(stores, query: PivotQuery, **kw):
    return [run_pivot(stores[name], query, **kw) for name in ("embedded", "opensearch")]


def test_ip_pivot_spans_alb_waf_nginx_vpcflow_route53_cloudtrail_on_both_stores(stores) -> None:
    for result in both(stores, PivotQuery(ip_entity(IP))):
        counts = {s.dataset: s.count for s in result.datasets}
        assert counts == EXPECTED_IP, result.store
        assert result.total == 14
        assert Counter(r["event"]["dataset"] for r in result.rows) == EXPECTED_IP
        times = [r["@timestamp"] for r in result.rows]
        assert times == sorted(times), f"{result.store}: not in time order"
        from siem.pivot.summary import what

        assert all(what(r).strip() for r in result.rows)
        roles = {s.dataset: s.roles for s in result.datasets}
        assert roles["aws.route53_resolver"] == ["source"]
        assert roles["aws.vpcflow"] == ["source", "destination"]
        assert roles["nginx.access"] == ["source", "client"]


def test_both_stores_return_the_same_rows_in_the_same_order(stores) -> None:
    for query in (PivotQuery(ip_entity(IP)), PivotQuery(ip_entity(IP), newest=True, page=2, limit=5)):
        embedded, search = both(stores, query)
        assert [r["_id"] for r in embedded.rows] == [r["_id"] for r in search.rows]
        assert [(s.dataset, s.count, s.roles) for s in embedded.datasets] == [
            (s.dataset, s.count, s.roles) for s in search.datasets
        ]
    newest = both(stores, PivotQuery(ip_entity(IP), newest=True, limit=3))[0].rows
    assert newest[0]["@timestamp"] >= newest[-1]["@timestamp"]
    assert newest[0]["@timestamp"][:4] == "2021"  # the Route 53 query is the latest event


@pytest.mark.parametrize("typed", ["alice", "ALICE", "aLiCe"])
def test_user_pivot_spans_cloudtrail_eks_auth_auditd_whatever_the_case(stores, typed: str) -> None:
    for result in both(stores, PivotQuery(Entity("user", typed))):
        datasets = {s.dataset for s in result.datasets}
        assert datasets == {"aws.cloudtrail", "kubernetes.audit", "linux.auth", "linux.auditd"}, result.store
        assert {s.dataset: s.roles for s in result.datasets}["aws.cloudtrail"] == ["actor"]


def test_cidr_matches_the_network_and_nothing_outside_it(stores) -> None:
    for result in both(stores, PivotQuery(ip_entity("89.160.20.0/24"))):
        assert result.total == 15, result.store  # the 14 events of IP + 89.160.20.7
        sources = {r.get("source", {}).get("ip") for r in result.rows}
        assert "89.160.20.7" in sources and "89.160.21.1" not in sources
    for result in both(stores, PivotQuery(ip_entity("2a02:cf40::/32"))):
        assert {s.dataset: s.count for s in result.datasets} == {"aws.vpcflow": 1}, result.store
    for result in both(stores, PivotQuery(ip_entity("10.0.0.0/8"))):
        assert "aws.alb" in {s.dataset for s in result.datasets}  # 10.0.0.1, the ALB target


def test_trace_id_matches_trace_id_and_http_request_id(stores) -> None:
    for result in both(stores, PivotQuery(Entity("trace", "Root=1-58337262-36d228ad5d99923122bbe354"))):
        assert [s.dataset for s in result.datasets] == ["aws.alb"], result.store
    for result in both(stores, PivotQuery(Entity("trace", "rid"))):
        assert {s.dataset for s in result.datasets} == {"aws.waf"}, result.store  # WAF http.request.id


def test_expand_lists_users_seen_with_the_ip_and_ips_seen_with_the_user(stores) -> None:
    for result in both(stores, PivotQuery(ip_entity(IP)), expand=True):
        assert dict(result.expand["users"]) == {"JohnDoe": 1, "JaneDoe": 1, "MySessionName": 1}, result.store
    for result in both(stores, PivotQuery(Entity("user", "alice")), expand=True):
        assert "127.0.0.1" in dict(result.expand["ips"]), result.store


def test_paging_splits_the_timeline_without_gaps_or_repeats(stores) -> None:
    for name in ("embedded", "opensearch"):
        pages = [run_pivot(stores[name], PivotQuery(ip_entity(IP), page=p, limit=4)).rows for p in (1, 2, 3, 4, 5)]
        ids = [r["_id"] for page in pages for r in page]
        assert [len(p) for p in pages] == [4, 4, 4, 2, 0], name
        assert len(set(ids)) == 14


def test_cli_table_json_csv_on_the_embedded_store(stores, monkeypatch, capsys) -> None:
    monkeypatch.delenv("SIEM_OPENSEARCH_URL", raising=False)
    monkeypatch.setenv("SIEM_DATA_DIR", str(stores["data_dir"]))
    assert main(["pivot", "--ip", IP, "--no-color", "--tz", "Europe/Paris"]) == 0
    out, err = capsys.readouterr()
    assert "14 of 14 events" in err and "\x1b[" not in out
    assert re.search(r"^  aws\.route53_resolver +1  2021-12-11T23:46:23\+01:00", out, re.M)
    assert "2014-07-08T19:35:27+02:00" in out  # 17:35:27Z in Paris summer time
    assert main(["pivot", "--ip", IP, "--format", "json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 14 and all(json.loads(line)["_what"] for line in lines)
    assert main(["pivot", "--user", "Alice", "--format", "csv", "--dataset", "linux.auth"]) == 0
    csv_lines = capsys.readouterr().out.splitlines()
    assert csv_lines[0].startswith("time,dataset,source")
    assert len(csv_lines) == 2 and "ALICE" in csv_lines[1]


def test_cli_refuses_bad_entities_zones_and_pages(stores, monkeypatch, capsys) -> None:
    monkeypatch.delenv("SIEM_OPENSEARCH_URL", raising=False)
    monkeypatch.setenv("SIEM_DATA_DIR", str(stores["data_dir"]))
    for argv, message in (
        (["--ip", "10.0.0.1/8"], "is not an IP address or CIDR network"),
        (["--ip", "1.2.3.4", "--user", "x"], "exactly one of"),
        (["--ip", "1.2.3.4", "--tz", "Mars/Olympus"], "not a known time zone"),
        (["--ip", "1.2.3.4", "--page", "0"], "pages start at 1"),
    ):
        assert main(["pivot", *argv]) == 2
        assert message in capsys.readouterr().err


def test_user_value_is_a_bound_parameter_not_sql_or_query_text(stores) -> None:
    hostile = "alice' OR '1'='1"
    for result in both(stores, PivotQuery(Entity("user", hostile))):
        assert result.total == 0, result.store


def test_opensearch_pages_beyond_ten_thousand_hits_with_search_after(stores, opensearch_client) -> None:
    """10,050 tiny events of another IP in the module's index: the last page, a page straddling the
    10,000-hit window and the newest-first last page are all reached, in order, without gaps."""
    store = stores["opensearch"]
    other, n = "198.51.100.9", 10_050
    lines = []
    for i in range(n):
        doc = {
            "@timestamp": f"2024-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
            "event": {"dataset": "aws.vpcflow"},
            "related": {"ip": [other]},
            "log": {"file": {"path": "s3://b/flow.log"}, "offset": i},
        }
        action = {"index": {"_index": f"{store.prefix}-events-pivotfixture", "_id": f"p{i:05d}"}}
        lines.append(json.dumps(action) + "\n" + json.dumps(doc) + "\n")
    assert not opensearch_client.bulk(body="".join(lines), params={"refresh": "true"})["errors"]

    last = run_pivot(store, PivotQuery(ip_entity(other), page=101, limit=100))  # rows 10,001-10,050
    assert last.total == n
    assert [r["log"]["offset"] for r in last.rows] == list(range(10_000, n))
    across = run_pivot(store, PivotQuery(ip_entity(other), page=2, limit=9_990))  # rows 9,991-10,050
    assert [r["log"]["offset"] for r in across.rows] == list(range(9_990, n))
    newest = run_pivot(store, PivotQuery(ip_entity(other), page=101, limit=100, newest=True))
    assert [r["log"]["offset"] for r in newest.rows] == list(range(49, -1, -1))


def test_colour_on_a_terminal_unless_no_color(stores, monkeypatch) -> None:
    """stdout on a real pseudo-terminal: colour is for people, never for pipes or --no-color."""
    import contextlib
    import pty

    monkeypatch.delenv("SIEM_OPENSEARCH_URL", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("SIEM_DATA_DIR", str(stores["data_dir"]))
    outputs = []
    for extra in ([], ["--no-color"]):
        leader, follower = pty.openpty()
        with open(follower, "w", encoding="utf-8") as terminal, contextlib.redirect_stdout(terminal):
            assert main(["pivot", "--ip", IP, "--limit", "1", *extra]) == 0
        outputs.append(os.read(leader, 1 << 20).decode())
        os.close(leader)
    assert "\x1b[1mIP 89.160.20.156: 14 events" in outputs[0]
    assert "\x1b[" not in outputs[1] and "IP 89.160.20.156: 14 events" in outputs[1]


def test_alerts_naming_the_ip_network_or_user_on_both_stores(stores) -> None:
    for query, expected in (
        (PivotQuery(ip_entity(IP)), ["a-ip"]),
        (PivotQuery(ip_entity("89.160.0.0/16")), ["a-other", "a-ip"]),  # most recently seen first
        (PivotQuery(Entity("user", "ALICE")), ["a-user"]),
        (PivotQuery(Entity("trace", "rid")), []),  # alerts carry no trace ids
    ):
        for result in both(stores, query, alerts=True):
            assert [a["alert"]["id"] for a in result.alerts] == expected, (result.store, query.entity)


def test_histogram_counts_every_match_not_only_the_page_the_same_on_both_stores(stores) -> None:
    embedded, search = both(stores, PivotQuery(ip_entity(IP), limit=1), histogram=True)
    assert embedded.histogram == search.histogram and embedded.bins == search.bins
    assert len(embedded.rows) == 1
    totals: Counter[str] = Counter()
    for bucket in embedded.histogram:
        totals.update(bucket)
    assert totals == EXPECTED_IP
    # first seen: the CloudTrail console logins of 2014-07-08 and 07-16; last: the 2021 Route 53 query
    assert embedded.histogram[0] == {"aws.cloudtrail": 3}
    assert embedded.histogram[-1] == {"aws.route53_resolver": 1}


def test_cli_pivot_refuses_a_timeline_missing_a_red_indexs_shard_in_one_line(
    stores, opensearch_url, opensearch_client, monkeypatch, capsys
) -> None:
    from test_detect_partial_answers import red_index

    red = f"{stores['prefix']}-events-lost"
    red_index(opensearch_client, red)
    monkeypatch.setenv("SIEM_OPENSEARCH_URL", opensearch_url)
    monkeypatch.setenv("SIEM_OPENSEARCH_INDEX_PREFIX", stores["prefix"])
    try:
        assert main(["pivot", "--ip", IP, "--format", "json"]) == 2
    finally:
        opensearch_client.indices.delete(index=red)
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("siem: OpenSearch error: 1 of ") and err.count("\n") == 1
    assert "shards did not answer (unassigned); nothing was decided on the partial answer" in err
    assert main(["pivot", "--ip", IP, "--format", "json"]) == 0  # the same pivot once the index answers
    assert len(capsys.readouterr().out.splitlines()) == 14
