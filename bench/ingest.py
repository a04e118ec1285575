"""`siem load` into OpenSearch against the node's raw `_bulk` ceiling, measured in the same run.

Ceiling: the same documents, serialised before the clock starts, posted as `_bulk` bodies of the
same batch size into the same indices `siem load` writes (the project's templates installed, the
indices deleted before every leg): what the node takes when the client does no work. Ours, twice:
in process (`pipeline.run` into `OpenSearchStore`) and the real CLI (`siem load FILE --workers 1` in
a child process, its start included). Every leg ends with a refresh and a count of the documents.
Rounds run the three legs in rotating order; medians are printed, with the client's CPU-seconds per
1,000 documents (this process's `process_time` for the ceiling and in-process legs, the child's
rusage for the CLI).

Inputs are those of `bench/parse_throughput.py`: ALB full HTTP lines and VPC flow v2 records
generated with varied addresses, ports and times, and CloudTrail records as AWS writes them.
On one 2-core machine the client and the node share the cores; the ceiling's client does almost
nothing, so the node has more CPU during the ceiling than while the client parses.

    scripts/opensearch-dev start
    SIEM_OPENSEARCH_URL=http://127.0.0.1:9200 .venv/bin/python bench/ingest.py [--records 100000]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson
from opensearchpy import OpenSearch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).parent))

from parse_throughput import build_input  # noqa: E402

from siem import formats  # noqa: E402
from siem.config import load_settings  # noqa: E402
from siem.formats.base import ParseOptions  # noqa: E402
from siem.formats.routing import Router  # noqa: E402
from siem.pipeline import Event, parse_object, run  # noqa: E402
from siem.sinks.opensearch import OpenSearchStore, make_client  # noqa: E402
from siem.sources.local import local_objects  # noqa: E402
from siem.templates import install_templates  # noqa: E402

PREFIX = "benchingest"
SIEM = Path(sys.executable).parent / "siem"  # the console script of this environment
LEGS = ("raw _bulk ceiling", "siem load, in process", "siem load, CLI")


def _action(index: str, doc_id: str) -> bytes:
    return orjson.dumps({"index": {"_index": index, "_id": doc_id}}) + b"\n"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Bench:
    def __init__(self, client: OpenSearch, url: str, path: Path, dataset: str, batch: int) -> None:
        self.client, self.url, self.path, self.batch = client, url, path, batch
        self.dataset = dataset.split()[0]  # "aws.vpcflow v2" → the log type
        forced = formats.get(self.dataset)
        self.events = [
            item
            for obj in local_objects(path)
            for item in parse_object(obj, Router(), ParseOptions(), forced)
            if isinstance(item, Event)
        ]
        store = OpenSearchStore(client, prefix=PREFIX, batch_size=batch)
        self.bodies = [
            b"".join(
                _action(store.index_for(e), e.id) + orjson.dumps(e.doc) + b"\n" for e in self.events[i : i + batch]
            )
            for i in range(0, len(self.events), batch)
        ]

    def _fresh(self) -> None:
        self.client.indices.delete(index=f"{PREFIX}-*", params={"ignore": 404, "expand_wildcards": "all"})
        install_templates(self.client, PREFIX)

    def _finish(self) -> None:
        self.client.indices.refresh(index=f"{PREFIX}-events-*")
        count = self.client.count(index=f"{PREFIX}-events-*")["count"]
        assert count == len(self.events), f"{count} documents indexed, {len(self.events)} expected"

    def ceiling(self) -> None:
        for body in self.bodies:
            response = self.client.bulk(body=body)
            assert not response["errors"]

    def in_process(self) -> None:
        store = OpenSearchStore(self.client, prefix=PREFIX, batch_size=self.batch)
        summary = run(local_objects(self.path), store, dataset=self.dataset, batch_size=self.batch)
        assert summary.written == len(self.events), summary.render()

    def cli(self) -> float:
        """The child's CPU-seconds."""
        env = os.environ | {
            "SIEM_OPENSEARCH_URL": self.url,
            "SIEM_OPENSEARCH_INDEX_PREFIX": PREFIX,
            "SIEM_OPENSEARCH_BULK_BATCH": str(self.batch),
            "PYTHONPATH": str(REPO),  # this checkout's siem, whatever the environment installed
        }
        before = _children_cpu()
        command = [str(SIEM), "load", str(self.path), "--type", self.dataset, "--workers", "1"]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"siem load exited {done.returncode}: {done.stderr.strip()[-2000:]}")
        return _children_cpu() - before

    def leg(self, how: Callable[[], float | None]) -> tuple[float, float]:
        """(seconds, the client's CPU-seconds) of one leg into fresh indices."""
        self._fresh()
        cpu, wall = time.process_time(), time.perf_counter()
        child_cpu = how()
        self._finish()
        seconds = time.perf_counter() - wall
        return seconds, child_cpu if child_cpu is not None else time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--dataset", nargs="+", default=["aws.alb", "aws.vpcflow v2", "aws.cloudtrail"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=2000, help="documents per _bulk request, every leg")
    args = parser.parse_args()
    url = os.environ.get("SIEM_OPENSEARCH_URL")
    if not url:
        raise SystemExit("set SIEM_OPENSEARCH_URL (scripts/opensearch-dev start gives one)")
    # the client `siem load` makes (its transport and gzip level), with a longer timeout for big bodies
    client = make_client(load_settings(env={"SIEM_OPENSEARCH_URL": url, "SIEM_OPENSEARCH_TIMEOUT": "120"}))
    try:
        for dataset in args.dataset:
            with tempfile.TemporaryDirectory() as tmp:
                path, _ = build_input(dataset, args.records, Path(tmp))
                bench = Bench(client, url, path, dataset, args.batch)
                legs = (bench.ceiling, bench.in_process, bench.cli)
                measured: dict[str, list[tuple[float, float]]] = {name: [] for name in LEGS}
                for rnd in range(args.rounds):
                    order = [(rnd + k) % len(LEGS) for k in range(len(LEGS))]
                    for k in order:
                        measured[LEGS[k]].append(bench.leg(legs[k]))
                report(dataset, len(bench.events), args, measured)
    finally:
        client.indices.delete(index=f"{PREFIX}-*", params={"ignore": 404, "expand_wildcards": "all"})


def report(dataset: str, n: int, args: argparse.Namespace, measured: dict[str, list[tuple[float, float]]]) -> None:
    print(f"{dataset}: {n:,} events, _bulk batches of {args.batch}, {args.rounds} rounds in rotating order (medians)")
    ceiling = statistics.median(s for s, _ in measured[LEGS[0]])
    for name in LEGS:
        seconds = statistics.median(s for s, _ in measured[name])
        cpu = statistics.median(c for _, c in measured[name])
        rounds = ", ".join(f"{s:.1f}s" for s, _ in measured[name])
        print(
            f"  {name:24} {n / seconds:>9,.0f} docs/s  {ceiling / seconds:5.2f}x the ceiling"
            f"  client {cpu / n * 1000:.3f} CPU-s per 1k docs  rounds: {rounds}"
        )


if __name__ == "__main__":
    main()
