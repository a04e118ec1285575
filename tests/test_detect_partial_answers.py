"""A search answered by only some shards is refused, never acted on, on a real node.

OpenSearch answers 200 when some shards fail (a circuit breaker on a busy node, a query a shard
cannot parse) and counts a shard that is not assigned (a red index) in ``total`` without calling it
failed. A detection built on such an answer silently misses the events of the missing shards, so
the engine refuses it (``PartialAnswer``): the rule is reported as failed, its checkpoint stays,
and the next cycle finds the events once the shard answers again. Both faults are produced by the
real node here: a mapping conflict between two indices, and an index whose only shard may be
allocated nowhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from test_detect_runner import NOW, _opensearch_store, iso, runner_for, scenario, write_events, write_rules

from siem.detect.state import open_state
from siem.sinks.opensearch import PartialAnswer, whole

pytestmark = pytest.mark.usefixtures("opensearch_url")

ONE_SHARD = {"number_of_shards": 1, "number_of_replicas": 0}
UNASSIGNED = "PartialAnswer: 1 of 2 shards did not answer (unassigned); nothing was decided on the partial answer"


@pytest.fixture
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from _opensearch_store(request)


def red_index(client: Any, name: str) -> None:
    """An index whose shard is allocated nowhere: red, as after losing the node that held it."""
    settings = {**ONE_SHARD, "index.routing.allocation.require._name": "no-such-node"}
    client.indices.create(index=name, body={"settings": settings}, params={"wait_for_active_shards": "0"})


def test_an_answer_missing_a_shard_is_refused_whether_it_failed_or_is_unassigned(
    opensearch_client: Any, index_prefix: str
) -> None:
    client, numbers, words = opensearch_client, f"{index_prefix}-numbers", f"{index_prefix}-words"
    # one field, two types: the shard of the long one cannot parse "abc"
    for name, kind in ((numbers, "long"), (words, "keyword")):
        mappings = {"properties": {"x": {"type": kind}}}
        client.indices.create(index=name, body={"settings": ONE_SHARD, "mappings": mappings})
    client.index(index=words, body={"x": "abc"}, params={"refresh": "true"})

    failed = client.search(index=f"{numbers},{words}", body={"query": {"term": {"x": "abc"}}})
    assert failed["_shards"]["failed"] == 1 and failed["hits"]["total"]["value"] == 1  # the node's own 200
    with pytest.raises(PartialAnswer, match=r"^1 of 2 shards did not answer \(query_shard_exception: .*abc"):
        whole(failed)

    red_index(client, f"{index_prefix}-red")
    unassigned = client.search(index=f"{words},{index_prefix}-red", body={"query": {"match_all": {}}})
    assert unassigned["_shards"] == {"total": 2, "successful": 1, "skipped": 0, "failed": 0}
    with pytest.raises(PartialAnswer, match=r"^1 of 2 shards did not answer \(unassigned\)"):
        whole(unassigned)

    complete = client.search(index=words, body={"query": {"match_all": {}}})
    assert whole(complete) is complete


def test_a_cycle_with_an_unassigned_events_shard_fails_its_rules_keeps_checkpoints_and_alerts_once_it_is_back(
    store: Any, opensearch_client: Any, tmp_path: Path
) -> None:
    rules = write_rules(tmp_path / "rules")
    write_events(store, scenario())
    red = f"{store.prefix}-events-aws.cloudtrail-2025"  # in the events pattern, like a lost year
    red_index(opensearch_client, red)
    runner = runner_for(store)

    report = runner.run_cycle(rules, now=NOW)
    assert report.new == 0 and report.exit_code == 1
    assert {r.rule.title: r.error for r in report.runs} == {
        "Console login failure": UNASSIGNED,
        "Failed logins by source": UNASSIGNED,
        "Failed login burst": UNASSIGNED,
    }
    state = open_state(store)
    assert state.checkpoints([r.id for r in rules]) == {}
    state.refresh()
    assert state.search(size=100) == []

    opensearch_client.indices.delete(index=red)  # the shard is back (here: the empty index is gone)
    retry = runner.run_cycle(rules, now=NOW + timedelta(minutes=1))
    assert retry.exit_code == 0 and retry.new == 17
    assert set(state.checkpoints([r.id for r in rules]).values()) == {iso(NOW + timedelta(seconds=30))}
    again = runner.run_cycle(rules, now=NOW + timedelta(minutes=2))
    assert again.new == 0
