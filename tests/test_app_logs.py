"""App field mappings (`apps:` in the config): start-up validation, misses counted and never lost,
X-Forwarded-For through trusted proxies, routes, rules on app.fields — and the issue's end-to-end
case: ALB + WAF + a lograge app log for one client and one trace id, from S3, pivoted on both stores."""

from __future__ import annotations

import gzip
import io
import json
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from siem.cli import main
from siem.config import ConfigError, load_settings
from siem.detect.engines import Scope
from siem.detect.engines.duckdb import DuckDBEngine
from siem.detect.engines.memory import MemoryEngine
from siem.detect.engines.opensearch import OpenSearchEngine
from siem.detect.rules import load_file
from siem.formats.routing import Router
from siem.pipeline import DeadLetter, Event, RunSummary, parse_object, run
from siem.sinks import EventQuery
from siem.sinks.embedded import EmbeddedStore
from siem.sinks.opensearch import OpenSearchStore
from siem.sources import SourceObject
from siem.templates import install_templates

CLIENT = "203.0.113.7"
TRACE = "Root=1-65937d45-0123456789abcdef01234567"
POD_FILE = "shop-api-7d9f8-x2x4q_shop_api-" + "c0" * 32 + ".log"
README = Path(__file__).resolve().parents[1] / "README.md"
# The README's "Application logs" config example, used as it is: every promise there is tested here.
APPS = README.read_text().split("## Application logs", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]


def _settings(tmp_path: Path, text: str):
    path = tmp_path / "siem.yaml"
    path.write_text(text)
    return load_settings(path, env={})


def _parse(records: list[Any], path: str, options) -> list[Any]:
    data = b"".join((r if isinstance(r, bytes) else orjson.dumps(r)) + b"\n" for r in records)
    obj = SourceObject(path, f"test:{path}", partial(io.BytesIO, data))
    return list(parse_object(obj, Router(), options, ingested="2024-01-03T00:00:00Z"))


def _record(app: dict[str, Any], labels: dict[str, str] | None = None) -> dict[str, Any]:
    kubernetes = {"pod_name": "checkout-1", "namespace_name": "shop", "container_name": "web"}
    return {
        "log": orjson.dumps(app).decode() + "\n",
        "stream": "stdout",
        "time": "2024-01-02T03:04:09Z",
        "kubernetes": {**kubernetes, "labels": labels or {"app": "checkout"}},
    }


CHECKOUT = {
    "ts": "02/01/2024 12:04:05.500000",
    "peer": "10.1.2.3",
    "actor": {"email": "alice@example.com", "plan": "pro"},
    "req": {
        "method": "put",
        "url": "/cart/9?x=1",
        "id": "r-1",
        "headers": {"x-forwarded-for": "198.51.100.1, 203.0.113.7, 10.9.9.9", "x-amzn-trace-id": TRACE},
    },
    "res": {"code": "409"},
    "ok": False,
}


# --- configuration errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("apps", "message"),
    [
        ("[{match: {namespace: a}, fields: {source_ip: 'req..ip'}}]", "apps[0].fields.source_ip: invalid JSON path"),
        ("[{match: {namespace: a}, fields: {source_ip: 'req.'}}]", "apps[0].fields.source_ip: invalid JSON path"),
        ("[{match: {namespace: a}, fields: {time: {path: t, format: '%Q %d'}}}]", "apps[0].fields.time.format:"),
        ("[{match: {namespace: a}, fields: {time: {path: t, format: '%H:%M'}}}]", "needs at least a year"),
        ("[{match: {namespace: a}, fields: {time: {path: t, timezone: Mars/Base}}}]", "apps[0].fields.time.timezone"),
        ("[{match: {namespace: a}, fields: {client: ip}}]", "apps[0].fields.client: unknown field"),
        ("[{match: {namespace: a}, use: log4j}]", "apps[0].use: unknown built-in mapping 'log4j'"),
        ("[{match: {pod_label: a}, use: lograge}]", "apps[0].match.pod_label: unknown condition"),
        ("[{use: lograge}]", "apps[0].match: expected at least one of"),
        ("[{match: {key: x}, format: regex, pattern: '(?P<a>x)', fields: {user_name: b}}]", "'b' is not a named group"),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, apps: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        _settings(tmp_path, f"apps: {apps}\n")
    assert message in str(err.value)
    assert str(err.value).startswith("apps[0]") or str(err.value).startswith("apps:")


def test_bad_mapping_stops_the_cli_at_start_up_with_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("apps: [{match: {namespace: a}, fields: {time: {path: t, format: '%Y-%m-%d %Q'}}}]\n")
    monkeypatch.setenv("SIEM_CONFIG", str(config))
    monkeypatch.setenv("SIEM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SIEM_OPENSEARCH_URL", raising=False)
    (tmp_path / "x.log").write_text("hello\n")
    code = main(["load", str(tmp_path / "x.log")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert "apps[0].fields.time.format:" in err and "Traceback" not in err


# --- mapping at run time ------------------------------------------------------------------------


def test_configured_mapping_fields_and_xff_walk_through_trusted_proxies(tmp_path: Path) -> None:
    options = _settings(tmp_path, APPS).parse_options()
    (event,) = [i for i in _parse([_record(CHECKOUT)], "app/x.log", options) if isinstance(i, Event)]
    doc = event.doc
    assert doc["@timestamp"] == "2024-01-02T03:04:05.500000Z"  # 12:04:05.5 at +09:00
    assert doc["source"]["ip"] == CLIENT  # 10.1.2.3 and 10.9.9.9 are trusted; 203.0.113.7 is not
    assert doc["client"]["ip"] == "10.1.2.3"
    assert doc["related"]["ip"] == ["198.51.100.1", CLIENT, "10.9.9.9", "10.1.2.3"]
    assert doc["user"] == {"name": "alice@example.com"}
    assert doc["http"]["request"] == {"method": "PUT", "id": "r-1"}
    assert doc["http"]["response"] == {"status_code": 409}
    assert doc["url"]["path"] == "/cart/9"
    assert doc["trace"] == {"id": TRACE}
    assert doc["event"]["outcome"] == "failure"
    assert doc["service"] == {"name": "checkout"}
    assert doc["app"]["fields"] == {"actor": {"plan": "pro"}}
    assert "siem" not in doc


def test_absent_and_malformed_fields_are_indexed_without_them_and_counted(tmp_path: Path) -> None:
    options = _settings(tmp_path, APPS).parse_options()
    broken = {**CHECKOUT, "ts": "yesterday", "peer": "not-an-ip", "res": {"code": 999}}
    del broken["actor"]
    records = [_record(broken), _record(CHECKOUT)]
    data = b"".join(orjson.dumps(r) + b"\n" for r in records)
    sink = EmbeddedStore(tmp_path / "store")
    try:
        summary = run([SourceObject("app/x.log", "t:1", partial(io.BytesIO, data))], sink, Router(), options)
        assert (summary.events, summary.dead_lettered, summary.fields_unmapped) == (2, 0, 1)
        assert "fields unmapped: 1" in summary.render()
        (doc,) = [d for d in sink.search(EventQuery()) if "siem" in d]
    finally:
        sink.close()
    assert doc["siem"]["unmapped"] == ["time:malformed", "source_ip:malformed", "user_name:absent", "status:malformed"]
    assert doc["@timestamp"] == "2024-01-02T03:04:09Z"  # the runtime's time when the app's is unusable
    assert "source" not in doc and "user" not in doc
    assert doc["app"]["fields"]["ts"] == "yesterday"  # malformed values stay visible
    assert doc["app"]["fields"]["peer"] == "not-an-ip"
    assert doc["app"]["fields"]["res"] == {"code": 999}
    assert doc["http"]["request"]["id"] == "r-1"  # the rest of the mapping still applied
    summed = RunSummary()
    summed.add(summary)
    assert summed.fields_unmapped == 1


def test_routes_by_key_glob_regex_and_by_fluentd_tag(tmp_path: Path) -> None:
    options = _settings(tmp_path, APPS).parse_options()
    line = {"log": "2024-01-02T03:04:05Z carol did rotate keys\n", "stream": "stderr", "time": "2024-01-02T03:04:09Z"}
    (batch,) = [i.doc for i in _parse([line], "s3://b/nodes/batch/x.log", options) if isinstance(i, Event)]
    assert batch["user"] == {"name": "carol"}
    assert batch["message"] == "rotate keys"
    assert batch["@timestamp"] == "2024-01-02T03:04:05Z"
    lograge = {"method": "GET", "path": "/", "status": 200, "controller": "C", "action": "a", "who": "x"}
    billing = POD_FILE.replace("_shop_", "_billing_")
    tagged = {**_record(lograge, {"app": "other"}), "tag": f"kubernetes.var.log.containers.{billing}"}
    (doc,) = [i.doc for i in _parse([tagged], "fluentd/x.log", options) if isinstance(i, Event)]
    assert doc["http"]["response"]["status_code"] == 200
    assert doc["app"]["fields"] == {"controller": "C", "action": "a", "who": "x"}
    assert "service" not in doc  # the lograge route has no name


def test_ecs_line_with_values_the_index_would_refuse_is_kept_and_counted(tmp_path: Path) -> None:
    options = _settings(tmp_path, "{}").parse_options()
    app = {
        "@timestamp": "2024-01-02T03:04:05Z",
        "ecs.version": "8.11.0",
        "source": {"ip": "not-an-ip", "port": "eighty"},
        "http": {"response": {"status_code": 200}},
        "event": {"dataset": "forged"},
        "message": "ok",
    }
    items = _parse([_record(app)], "app/ecs.log", options)
    (doc,) = [i.doc for i in items if isinstance(i, Event)]
    assert not [i for i in items if isinstance(i, DeadLetter)]
    assert doc["event"]["dataset"] == "kubernetes.container"
    assert doc["http"]["response"]["status_code"] == 200
    assert doc["siem"]["unmapped"] == ["source.ip:malformed", "source.port:malformed"]
    assert doc["app"]["fields"] == {"source.ip": "not-an-ip", "source.port": "eighty"}


RULE = """
title: Checkout Conflict On A Pro Plan
id: 0b7c1f2e-5a2d-4c3b-9e1f-2a3b4c5d6e7f
status: experimental
description: app.fields leaves (an app's own keys) are matchable by rules.
author: siem tests
date: 2026-11-29
logsource: {product: kubernetes, service: container}
detection:
  selection:
    app.fields.actor.plan: pro
    http.response.status_code: 409
  condition: selection
level: low
"""


def test_rules_match_app_fields_on_every_engine(tmp_path: Path, opensearch_client, index_prefix) -> None:
    options = _settings(tmp_path, APPS).parse_options()
    other = {**CHECKOUT, "actor": {"email": "bob@example.com", "plan": "free"}}
    found = [i for i in _parse([_record(CHECKOUT), _record(other)], "app/r.log", options) if isinstance(i, Event)]
    rule_file = tmp_path / "rule.yml"
    rule_file.write_text(RULE)
    (rule,) = load_file(rule_file)
    assert rule.runnable, rule.problems
    hit = found[0].id
    assert [i for i, _ in MemoryEngine([(e.id, e.doc) for e in found]).select(rule, Scope())] == [hit]
    store = EmbeddedStore(tmp_path / "duck")
    try:
        assert store.write(found) == []
        assert [i for i, _ in DuckDBEngine(store).select(rule, Scope())] == [hit]
    finally:
        store.close()
    install_templates(opensearch_client, index_prefix)
    search = OpenSearchStore(opensearch_client, prefix=index_prefix, refresh=True)
    assert search.write(found) == []
    search.refresh()
    assert [i for i, _ in OpenSearchEngine(search).select(rule, Scope())] == [hit]


# --- end to end: ALB + WAF + app, one client, one trace id ---------------------------------------

ALB_KEY = (
    "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2024/01/02/123456789012_elb_app.shop_20240102T0305Z.log.gz"
)
WAF_KEY = "AWSLogs/123456789012/WAFLogs/us-east-1/shop-acl/2024/01/02/03/05/waf.log.gz"
APP_KEY = f"fluent-bit-logs/kube.var.log.containers.{POD_FILE}/2024/01/02/03/app.log.gz"
ALB_LINE = (
    f"https 2024-01-02T03:04:05.900000Z app/shop/50dc6c495c0c9188 {CLIENT}:51234 10.0.1.5:8080 0.001 0.270 0.000 "
    '201 201 120 310 "POST https://shop.example:443/orders?ref=mail HTTP/1.1" "Mozilla/5.0" '
    "ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 "
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop/73e2d6bc24d8a067 "
    f'"{TRACE}" "shop.example" "-" 0 2024-01-02T03:04:05.620000Z "forward" "-" "-" "10.0.1.5:8080" "201" "-" "-"'
)
WAF_LINE = {
    "timestamp": 1704164645500,
    "formatVersion": 1,
    "webaclId": "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/shop-acl/1",
    "terminatingRuleId": "Default_Action",
    "terminatingRuleType": "REGULAR",
    "action": "ALLOW",
    "httpSourceName": "ALB",
    "httpSourceId": "123456789012-app/shop/50dc6c495c0c9188",
    "ruleGroupList": [],
    "rateBasedRuleList": [],
    "nonTerminatingMatchingRules": [],
    "httpRequest": {
        "clientIp": CLIENT,
        "country": "JP",
        "headers": [{"name": "Host", "value": "shop.example"}],
        "uri": "/orders",
        "args": "ref=mail",
        "httpVersion": "HTTP/1.1",
        "httpMethod": "POST",
        "requestId": "waf-1",
    },
}
LOGRAGE = {
    "method": "POST",
    "path": "/orders?ref=mail",
    "format": "json",
    "controller": "OrdersController",
    "action": "create",
    "status": 201,
    "duration": 212.5,
    "time": "2024-01-02T03:04:05.780Z",
    "remote_ip": CLIENT,
    "request_id": "req-42",
    "user_id": 42,
    "trace_id": TRACE,
}
ECS_REFUSABLE = {
    "@timestamp": "2024-01-02T03:04:06Z",
    "ecs.version": "8.11.0",
    "message": "cart saved",
    "source": {"ip": "localhost"},
    "http": {"response": {"status_code": "OK"}},
}
APP_RECORD = {
    "date": 1704164645.8,
    "stream": "stdout",
    "log": json.dumps(LOGRAGE),
    "kubernetes": {"pod_name": "shop-api-7d9f8-x2x4q", "namespace_name": "shop", "container_name": "api"},
}


@pytest.fixture(params=["opensearch", "embedded"])
def store_env(request, monkeypatch, tmp_path: Path) -> str:
    monkeypatch.delenv("SIEM_CONFIG", raising=False)
    config = tmp_path / "siem.yaml"
    config.write_text(
        yaml.safe_dump({"apps": [{"name": "shop-api", "match": {"namespace": "shop"}, "use": "lograge"}]})
    )
    monkeypatch.setenv("SIEM_CONFIG", str(config))
    if request.param == "opensearch":
        monkeypatch.setenv("SIEM_OPENSEARCH_URL", request.getfixturevalue("opensearch_url"))
        monkeypatch.setenv("SIEM_OPENSEARCH_INDEX_PREFIX", request.getfixturevalue("index_prefix"))
    else:
        monkeypatch.delenv("SIEM_OPENSEARCH_URL", raising=False)
        monkeypatch.setenv("SIEM_DATA_DIR", str(tmp_path / "data"))
    return request.param


def test_alb_waf_and_app_log_pivot_on_one_ip_and_join_on_trace_id(
    store_env, aws_endpoint, s3, bucket, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint)
    s3.put_object(Bucket=bucket, Key=ALB_KEY, Body=gzip.compress(ALB_LINE.encode() + b"\n"))
    s3.put_object(Bucket=bucket, Key=WAF_KEY, Body=gzip.compress(orjson.dumps(WAF_LINE) + b"\n"))
    ecs_record = {**APP_RECORD, "log": json.dumps(ECS_REFUSABLE)}  # the same pod: types the index would refuse
    app_object = orjson.dumps(APP_RECORD) + b"\n" + orjson.dumps(ecs_record) + b"\n"
    s3.put_object(Bucket=bucket, Key=APP_KEY, Body=gzip.compress(app_object))
    assert main(["load", "--json", f"s3://{bucket}/"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["by_dataset"] == {"aws.alb": 1, "aws.waf": 1, "kubernetes.container": 2}
    assert (summary["written"], summary["dead_lettered"], summary["fields_unmapped"]) == (4, 0, 1)

    assert main(["pivot", "--ip", CLIENT, "--format", "json"]) == 0
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["event"]["dataset"] for d in docs] == ["aws.waf", "kubernetes.container", "aws.alb"]
    assert [d["@timestamp"] for d in docs] == [
        "2024-01-02T03:04:05.500Z",
        "2024-01-02T03:04:05.780000Z",
        "2024-01-02T03:04:05.900000Z",
    ]
    waf, app, alb = docs
    assert alb["trace"]["id"] == app["trace"]["id"] == TRACE
    assert app["source"]["ip"] == alb["source"]["ip"] == waf["source"]["ip"] == CLIENT
    assert app["user"] == {"id": "42"}
    assert app["http"]["request"]["id"] == "req-42"
    assert app["service"] == {"name": "shop-api"}
    assert app["orchestrator"]["namespace"] == "shop"
    assert app["container"]["name"] == "api"

    assert main(["pivot", "--trace-id", TRACE, "--format", "json"]) == 0  # the request, load balancer → app
    joined = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(d["event"]["dataset"], d["trace"]["id"]) for d in joined] == [
        ("kubernetes.container", TRACE),
        ("aws.alb", TRACE),
    ]


def test_outcome_logged_by_the_app_wins_over_the_status(tmp_path: Path) -> None:
    options = _settings(tmp_path, APPS).parse_options()
    records = [_record({**CHECKOUT, "ok": True}), _record({**CHECKOUT, "ok": "maybe"})]
    docs = [i.doc for i in _parse(records, "app/o.log", options) if isinstance(i, Event)]
    assert [d["event"]["outcome"] for d in docs] == ["success", "failure"]  # 409 decides only without `ok`
    assert [d.get("siem") for d in docs] == [None, {"unmapped": ["outcome:malformed"]}]
