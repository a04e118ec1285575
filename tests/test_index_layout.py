"""The index layout scales and stays idempotent (issue 8, item 8), on the real node.

Events go to ``<prefix>-events-<family>-<yyyy>`` (or ``.mm`` for monthly families), odd timestamps to
``<prefix>-events-<family>-outliers``; the dead-letter and alert indices exist from template install on;
a node at its shard limit is one clear line. See siem/sinks/index_layout.py for the why.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from siem import formats
from siem.cli import main
from siem.config import ConfigError, load_settings
from siem.formats.base import ParseOptions
from siem.pipeline import Event, run
from siem.sinks.index_layout import FAMILIES, FAMILY_NAMES, IndexLayout
from siem.sinks.opensearch import OpenSearchStore, ShardLimitReached
from siem.sources.local import local_objects
from siem.templates import install_templates

SAMPLES = Path(__file__).parent / "data" / "samples" / "logs"
# The samples span 1986-2026 over 10 families. Yearly family indices make 47 of them today (the old
# dataset-and-month layout made 87); a few more sample files must not turn that back into a hundred.
MAX_SAMPLE_INDICES = 50


def _doc(ts: str | None, dataset: str = "aws.alb") -> dict:
    doc: dict = {"event": {"dataset": dataset, "ingested": "2026-01-01T00:00:00Z"}, "source": {"ip": "192.0.2.1"}}
    if ts is not None:
        doc["@timestamp"] = ts
    return doc


def test_every_log_type_has_a_family_chosen_on_purpose() -> None:
    missing = set(formats.registry()) - set(FAMILIES)
    assert not missing, f"add these datasets to index_layout.FAMILIES: {sorted(missing)}"


def test_index_names_by_family_period_and_outlier_bounds() -> None:
    layout = IndexLayout("p", "year", ["aws.vpcflow"])
    assert layout.index_for("aws.alb", "2024-03-05T10:00:00Z") == "p-events-aws.elb-2024"
    assert layout.index_for("linux.auditd", "2016-12-01T00:00:00Z") == "p-events-linux-2016"
    assert layout.index_for("apache.error", "2019-06-01T00:00:00Z") == "p-events-web-2019"
    assert layout.index_for("aws.route53_resolver", "2021-12-01T00:00:00Z") == "p-events-aws.dns-2021"
    assert layout.index_for("aws.vpcflow", "2024-03-05T10:00:00Z") == "p-events-aws.vpcflow-2024.03"
    assert layout.index_for("some.new_type", "2024-03-05T10:00:00Z") == "p-events-app-2024"
    assert layout.index_for("aws.alb", "1990-01-01T00:00:00Z") == "p-events-aws.elb-1990"
    assert layout.index_for("aws.alb", "2099-12-31T23:59:59.999999Z") == "p-events-aws.elb-2099"
    for odd in ("1989-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "2100-01-01T00:00:00Z", "9999-12-31T23:59:59Z", None):
        assert layout.index_for("aws.alb", odd) == "p-events-aws.elb-outliers", odd
    monthly = IndexLayout("p", "month")
    assert monthly.index_for("linux.auth", "2026-02-14T08:00:00Z") == "p-events-linux-2026.02"


def test_index_period_and_monthly_families_are_validated_in_config(tmp_path: Path) -> None:
    settings = load_settings(env={"SIEM_OPENSEARCH_MONTHLY_FAMILIES": "aws.vpcflow,aws.elb"})
    assert settings.opensearch["index_period"] == "year"
    assert settings.opensearch["monthly_families"] == ["aws.vpcflow", "aws.elb"]
    bad_period = tmp_path / "period.yml"
    bad_period.write_text("opensearch:\n  index_period: week\n")
    with pytest.raises(ConfigError, match=r"opensearch.index_period.*'week'.*year, month"):
        load_settings(bad_period, env={})
    bad_family = tmp_path / "family.yml"
    bad_family.write_text("opensearch:\n  monthly_families: [aws.alb]\n")  # a dataset, not a family
    with pytest.raises(ConfigError, match=r"monthly_families.*unknown index family \['aws.alb'\]"):
        load_settings(bad_family, env={})


def _snapshot(client, prefix: str) -> tuple[set[str], int, set[str]]:
    client.indices.refresh(index=f"{prefix}-*")
    names = set(client.indices.get(index=f"{prefix}-*"))
    hits = client.search(
        index=f"{prefix}-events-*", body={"query": {"match_all": {}}, "_source": False, "size": 10000}
    )["hits"]["hits"]
    ids = {f"{hit['_index']}/{hit['_id']}" for hit in hits}
    return names, client.count(index=f"{prefix}-events-*")["count"], ids


@pytest.fixture(scope="module")
def loaded_twice(opensearch_client):
    """Every bundled sample loaded twice through the real pipeline into one prefix of our own."""
    prefix = f"tlay{uuid.uuid4().hex[:8]}"
    try:
        install_templates(opensearch_client, prefix)
        after_install = set(opensearch_client.indices.get(index=f"{prefix}-*"))
        store = OpenSearchStore(opensearch_client, prefix=prefix)
        options = ParseOptions(syslog_year=2025)  # syslog lines carry no year: fix it, or the years follow the clock
        first = run(local_objects(SAMPLES), store, options=options)
        snap1 = _snapshot(opensearch_client, prefix)
        second = run(local_objects(SAMPLES), store, options=options)
        snap2 = _snapshot(opensearch_client, prefix)
        yield prefix, after_install, (first, snap1), (second, snap2)
    finally:
        opensearch_client.indices.delete(index=f"{prefix}-*", params={"ignore_unavailable": "true", "ignore": 404})
        for name in ("events", "deadletter", "alerts"):
            opensearch_client.indices.delete_index_template(name=f"{prefix}-{name}", params={"ignore": 404})
        for name in ("settings", "ecs"):
            opensearch_client.cluster.delete_component_template(name=f"{prefix}-{name}", params={"ignore": 404})


def test_template_install_creates_the_dead_letter_and_alert_indices(loaded_twice) -> None:
    prefix, after_install, _, _ = loaded_twice
    assert after_install == {f"{prefix}-deadletter", f"{prefix}-alerts"}


def test_bundled_samples_make_few_family_indices_all_under_the_events_pattern(loaded_twice) -> None:
    prefix, _, (first, (names, count, _)), _ = loaded_twice
    assert first.written > 800, first.render()
    events = names - {f"{prefix}-deadletter", f"{prefix}-alerts"}
    assert all(name.startswith(f"{prefix}-events-") for name in events), sorted(events)
    assert len(events) <= MAX_SAMPLE_INDICES, sorted(events)
    shape = re.compile(rf"^{prefix}-events-(?P<family>[a-z0-9._]+)-(?:\d{{4}}|outliers)$")
    families = {shape.match(name)["family"] for name in events if shape.match(name)}
    assert len(families) == len({name.rsplit("-", 1)[0] for name in events}), "every name is <family>-<yyyy>"
    assert families <= set(FAMILY_NAMES)
    for expected in ("aws.elb-2018", "aws.elb-2024", "aws.dns-2021", "linux-2025", "web-2016", "kubernetes-2018"):
        assert f"{prefix}-events-{expected}" in events
    assert count == first.written


def test_reload_overwrites_same_indices_same_ids_same_count(loaded_twice) -> None:
    _, _, (first, snap1), (second, snap2) = loaded_twice
    assert second.written == first.written
    assert snap2[0] == snap1[0]  # no new index
    assert snap2[1] == snap1[1]  # no new document
    assert snap2[2] == snap1[2]  # every id in the same index as before


def test_sample_from_1986_lands_in_the_outliers_index(loaded_twice, opensearch_client) -> None:
    prefix = loaded_twice[0]
    hits = opensearch_client.search(
        index=f"{prefix}-events-linux-outliers", body={"query": {"match_all": {}}, "size": 10}
    )["hits"]["hits"]
    # test-darwin-syslog.log's two lines are stamped 1986 (an RFC 5424 sample with an old device clock)
    assert sorted(hit["_source"]["@timestamp"][:4] for hit in hits) == ["1986", "1986"]


def test_outlier_timestamps_share_one_index_and_rewrites_overwrite(loaded_twice, opensearch_client) -> None:
    prefix = loaded_twice[0]  # the samples' prefix: no index of its own to create and delete
    store = OpenSearchStore(opensearch_client, prefix=prefix, refresh=True)
    stamps = {
        "epoch": "1970-01-01T00:00:00Z",
        "far": "9999-12-31T23:59:59Z",
        "none": None,
        "ok": "2099-12-31T00:00:00Z",
    }
    events = [Event(f"odd-{key}", "nginx.access", _doc(ts, "nginx.access")) for key, ts in stamps.items()]
    assert store.write(events) == []
    assert store.write(events) == []
    query = {"query": {"ids": {"values": [event.id for event in events]}}, "size": 10}
    hits = opensearch_client.search(index=f"{prefix}-events-*", body=query)["hits"]["hits"]
    where = sorted((hit["_id"], hit["_index"]) for hit in hits)
    outliers = f"{prefix}-events-web-outliers"
    assert where == [
        ("odd-epoch", outliers),
        ("odd-far", outliers),
        ("odd-none", outliers),
        ("odd-ok", f"{prefix}-events-web-2099"),
    ]


def _use_prefix(monkeypatch, url: str, prefix: str, tmp_path: Path) -> None:
    monkeypatch.setenv("SIEM_OPENSEARCH_URL", url)
    monkeypatch.setenv("SIEM_OPENSEARCH_INDEX_PREFIX", prefix)
    monkeypatch.setenv("SIEM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SIEM_CONFIG", raising=False)


def test_shard_limit_on_load_is_one_line_naming_the_setting(
    opensearch_url, opensearch_client, index_prefix, monkeypatch, capsys, tmp_path
) -> None:
    """The node's own refusal, produced without touching cluster settings other helpers share: our
    prefix's settings ask for 1024 shards per new index, more than the 1000 a node allows in all."""
    _use_prefix(monkeypatch, opensearch_url, index_prefix, tmp_path)
    opensearch_client.indices.put_index_template(
        name=f"{index_prefix}-events",
        body={"index_patterns": [f"{index_prefix}-events-*"], "template": {"settings": {"number_of_shards": 1024}}},
    )
    log = tmp_path / "access.log"
    log.write_text('203.0.113.9 - - [10/Oct/2023:13:55:36 +0000] "GET / HTTP/1.1" 200 12 "-" "curl/8.0"\n')
    code = main(["load", str(log), "--type", "nginx.access", "--no-templates"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1, err
    assert err[0].startswith(f"siem: OpenSearch error: cannot create index {index_prefix}-events-web-2023: ")
    assert "maximum shards open" in err[0]
    assert "raise cluster.max_shards_per_node" in err[0]


def test_shard_limit_at_template_install_is_one_line_naming_the_setting(
    opensearch_url, opensearch_client, index_prefix, monkeypatch, capsys, tmp_path
) -> None:
    """Same refusal, for the indices created at install (alerts comes first): no index is created at all."""
    _use_prefix(monkeypatch, opensearch_url, index_prefix, tmp_path)
    big = f"{index_prefix}-zz-big"
    opensearch_client.indices.put_index_template(
        name=big,
        body={
            "index_patterns": [f"{index_prefix}-alerts*", f"{index_prefix}-deadletter*"],
            "priority": 300,
            "template": {"settings": {"index": {"number_of_shards": 1024}}},
        },
    )
    try:
        with pytest.raises(ShardLimitReached, match=r"cluster\.max_shards_per_node"):
            install_templates(opensearch_client, index_prefix)
        code = main(["templates", "install"])
    finally:
        opensearch_client.indices.delete_index_template(name=big, params={"ignore": 404})
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1, err
    assert err[0].startswith(f"siem: OpenSearch error: cannot create index {index_prefix}-alerts: ")
    assert "raise cluster.max_shards_per_node" in err[0]
    assert opensearch_client.indices.get(index=f"{index_prefix}-*", params={"ignore_unavailable": "true"}) == {}
