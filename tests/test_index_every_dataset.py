"""Every log type, indexed into the real OpenSearch through the templates, is found by IP and by user.

This is the analyst's promise: whatever the source, `related.ip` / `related.user` (and `source.ip`,
`user.name`) find it. It also proves that no sample of any type is rejected by the mappings.
"""

from __future__ import annotations

import pytest
from oracle import parse_file, sample

from siem import formats
from siem.sinks import EventQuery
from siem.sinks.opensearch import OpenSearchStore
from siem.templates import install_templates

# dataset -> sample files (relative to shared/samples); each must yield events
SAMPLES: dict[str, list[str]] = {
    "aws.alb": ["alb/test-alb.log"],
    "aws.waf": ["waf/test-waf.log"],
    "aws.cloudtrail": ["cloudtrail/cloudtrail_log.json", "cloudtrail/test-console-login-json.log"],
    "aws.vpcflow": ["vpcflow/test-extra-samples.log"],
    "aws.route53_resolver": ["route53_resolver/test-route53.log"],
    "aws.network_firewall": ["network_firewall/test-firewall.log"],
    "kubernetes.audit": ["k8s_audit/exec_pod.json"],
    "linux.syslog": ["syslog/test-suse-syslog.log"],
    "linux.auth": ["auth/test-auth.log"],
    "linux.auditd": ["auditd/test-auditd-raw.log", "auditd/test-auditd-enriched.log"],
    "nginx.access": ["nginx_access/test-access.log"],
    "nginx.error": ["nginx_error/test-error-raw.log"],
    "apache.access": ["apache_access/test-access-basic.log"],
    "apache.error": ["apache_error/test-error-basic.log"],
    "kubernetes.container": ["k8s_container/docker-json-istio-proxy.log", "k8s_container/fluentbit-k8s-json-logs.out"],
}
# The web samples have no authenticated user; this hand-made combined-format line (HTTP basic auth
# user "alice") is added to them so the user pivot is exercised on web logs too.
AUTH_LINE = '203.0.113.9 - alice [10/Oct/2023:13:55:36 +0000] "GET /admin HTTP/1.1" 401 12 "-" "curl/8.0"\n'
WITH_AUTH_LINE = {"nginx.access", "apache.access"}
# Datasets whose records carry no user at all (network logs, WAF, web-server error logs, syslog).
NO_USER = {
    "aws.alb",
    "aws.waf",
    "aws.vpcflow",
    "aws.route53_resolver",
    "aws.network_firewall",
    "nginx.error",
    "apache.error",
    "linux.syslog",
    "kubernetes.container",  # the samples' apps log no user
}
# Datasets whose records carry no IP at all.
NO_IP = {"linux.syslog"}
CONTAINERS = {"aws.cloudwatch_logs", "fluentd"}  # carry other datasets; covered by their own tests


def test_every_registered_dataset_is_covered() -> None:
    assert set(formats.registry()) - CONTAINERS == set(SAMPLES)


@pytest.fixture(scope="module")
def loaded(opensearch_client, tmp_path_factory):
    """All samples of all datasets in one prefix, written through the real bulk path."""
    prefix = "tevery"
    opensearch_client.indices.delete(index=f"{prefix}-*", params={"ignore_unavailable": "true", "ignore": 404})
    install_templates(opensearch_client, prefix)
    store = OpenSearchStore(opensearch_client, prefix=prefix)
    from siem.pipeline import Event

    docs: dict[str, list[dict]] = {}
    auth_file = tmp_path_factory.mktemp("web") / "auth.log"
    auth_file.write_text(AUTH_LINE)
    for dataset, files in SAMPLES.items():
        paths = [sample(name) for name in files] + ([auth_file] if dataset in WITH_AUTH_LINE else [])
        for name in paths:
            events, letters = parse_file(name, dataset)
            assert events, f"{name} gave no {dataset} events ({[d.reason for d in letters][:3]})"
            batch = [Event(f"{dataset}-{name}-{i}", e["event"]["dataset"], e) for i, e in enumerate(events)]
            rejected = store.write(batch)
            assert not rejected, f"{dataset}: OpenSearch rejected {rejected[0].reason}"
            docs.setdefault(dataset, []).extend(events)
    store.refresh()
    yield store, docs
    opensearch_client.indices.delete(index=f"{prefix}-*", params={"ignore_unavailable": "true", "ignore": 404})


@pytest.mark.parametrize("dataset", sorted(SAMPLES))
def test_found_by_source_ip_and_user(loaded, opensearch_client, dataset: str) -> None:
    store, docs = loaded
    events = docs[dataset]
    with_ip = [e for e in events if e.get("source", {}).get("ip")]
    with_user = [e for e in events if e.get("user", {}).get("name")]
    if dataset not in NO_IP:
        assert with_ip, f"{dataset}: no event has source.ip"
        ip = with_ip[0]["source"]["ip"]
        assert store.count(EventQuery(ip=ip, datasets=(dataset,))) >= 1
        body = {"query": {"bool": {"filter": [{"term": {"source.ip": ip}}, {"term": {"event.dataset": dataset}}]}}}
        assert opensearch_client.count(index="tevery-events-*", body=body)["count"] >= 1
    if dataset not in NO_USER:
        assert with_user, f"{dataset}: no event has user.name"
        user = with_user[0]["user"]["name"]
        assert store.count(EventQuery(user=user, datasets=(dataset,))) >= 1
        body = {"query": {"bool": {"filter": [{"term": {"user.name": user}}, {"term": {"event.dataset": dataset}}]}}}
        assert opensearch_client.count(index="tevery-events-*", body=body)["count"] >= 1
    both = [e for e in with_ip if e.get("user", {}).get("name")]
    if both:  # the pivot an analyst makes: this user from this IP
        ip, user = both[0]["source"]["ip"], both[0]["user"]["name"]
        assert store.count(EventQuery(ip=ip, user=user, datasets=(dataset,))) >= 1
