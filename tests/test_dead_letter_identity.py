"""Dead letters at the same position are distinct (issue 8, point 6); re-loading stores each once.

CloudWatch Logs records inside one Firehose document share the document's byte offset: two bad
records there used to share the id (path, offset, stage) and one overwrote the other, so the
summary counted 2 and the store kept 1.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
from oracle import REPO

from siem.cli import main
from siem.pipeline import DeadLetter
from siem.sinks.embedded import EmbeddedStore
from siem.sinks.opensearch import OpenSearchStore
from siem.templates import install_templates

FIREHOSE = REPO / "tests/data/samples/logs/cloudwatch_logs/kinesisFirehosePutEvent.json"


def _load(capsys, *args: str) -> dict:
    code = main(["load", *args, "--json"])
    assert code == 1
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _listed(capsys) -> list[dict]:
    assert main(["dead-letters", "--format", "json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_two_bad_records_at_one_offset_are_two_embedded_dead_letters_and_reload_keeps_two(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.delenv("SIEM_OPENSEARCH_URL", raising=False)
    monkeypatch.setenv("SIEM_DATA_DIR", str(tmp_path / "data"))
    summary = _load(capsys, str(FIREHOSE))
    assert summary["dead_lettered"] == 2
    letters = _listed(capsys)
    assert len(letters) == 2 and {d["offset"] for d in letters} == {0}
    assert {d["reason"].split(": ")[0] for d in letters} == {
        "document at byte 0 records[0]",
        "document at byte 0 records[1]",
    }
    _load(capsys, str(FIREHOSE), "--force")  # reloaded (the ledger would skip the unchanged file)
    assert len(_listed(capsys)) == 2  # idempotent: the same object twice stores each dead letter once


def test_two_bad_records_at_one_offset_are_two_opensearch_dead_letters_and_reload_keeps_two(
    opensearch_url, index_prefix, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("SIEM_OPENSEARCH_URL", opensearch_url)
    monkeypatch.setenv("SIEM_OPENSEARCH_INDEX_PREFIX", index_prefix)
    assert _load(capsys, str(FIREHOSE))["dead_lettered"] == 2
    assert len(_listed(capsys)) == 2
    _load(capsys, str(FIREHOSE), "--force")  # reloaded (the ledger would skip the unchanged file)
    assert len(_listed(capsys)) == 2


def test_opensearch_same_position_letters_with_different_reasons_are_distinct(opensearch_client, index_prefix) -> None:
    install_templates(opensearch_client, index_prefix)
    store = OpenSearchStore(opensearch_client, prefix=index_prefix, refresh=True)
    letters = [DeadLetter("s3://b/k", 0, "map", f"records[{i}]: bad", "aws.cloudwatch_logs", "x") for i in range(3)]
    store.write_dead_letters(letters)
    store.write_dead_letters(letters)
    store.refresh()
    assert len(store.dead_letters()) == 3


def test_embedded_store_made_before_the_new_identity_is_migrated(tmp_path: Path) -> None:
    db = duckdb.connect(str(tmp_path / "events.duckdb"))
    db.execute(
        """CREATE TABLE dead_letters (
        recorded_at TIMESTAMPTZ, path VARCHAR, "offset" BIGINT, stage VARCHAR, reason VARCHAR,
        dataset VARCHAR, event_id VARCHAR, raw VARCHAR, PRIMARY KEY (path, "offset", stage))"""
    )
    db.execute("INSERT INTO dead_letters VALUES (now(), 'old.log', 0, 'map', 'records[0]: bad', NULL, NULL, 'x')")
    db.close()
    store = EmbeddedStore(tmp_path)
    try:
        same_as_old = DeadLetter("old.log", 0, "map", "records[0]: bad", None, "x")
        store.write_dead_letters([same_as_old, DeadLetter("old.log", 0, "map", "records[1]: bad", None, "y")])
        assert sorted(d["reason"] for d in store.dead_letters()) == ["records[0]: bad", "records[1]: bad"]
    finally:
        store.close()


def test_rejected_document_is_one_dead_letter_across_runs_whatever_its_ingested_time(
    tmp_path: Path, opensearch_client, index_prefix
) -> None:
    def rejected(run: int) -> DeadLetter:
        raw = json.dumps({"event": {"ingested": f"2024-01-0{run}T00:00:00Z"}})
        return DeadLetter("s3://b/k", 7, "index", "HTTP 400 mapper_parsing_exception", "aws.alb", raw, "doc-1")

    install_templates(opensearch_client, index_prefix)
    embedded = EmbeddedStore(tmp_path)
    try:
        for store in (embedded, OpenSearchStore(opensearch_client, prefix=index_prefix, refresh=True)):
            store.write_dead_letters([rejected(1)])
            store.write_dead_letters([rejected(2)])
            store.refresh()
            assert len(store.dead_letters()) == 1, store.name
    finally:
        embedded.close()  # not the OpenSearch one: its client is the session's
