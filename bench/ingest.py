"""End-to-end ingest into OpenSearch against the node's raw `_bulk` ceiling, in the same run.

Ceiling: the same documents, already serialised, posted as bulk bodies of the same size (what the
node can take when the client does no work). Ours: `siem load` of the gzip file (decompress,
parse, normalize, serialise, bulk). Interleaved rounds into fresh indices; medians reported.

    scripts/opensearch-dev start
    SIEM_OPENSEARCH_URL=http://127.0.0.1:9200 .venv/bin/python bench/ingest.py [--records 100000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson
from opensearchpy import OpenSearch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).parent))

from parse_throughput import build_input  # noqa: E402

from siem import formats  # noqa: E402
from siem.formats.base import ParseOptions  # noqa: E402
from siem.formats.routing import Router  # noqa: E402
from siem.pipeline import Event, parse_object, run  # noqa: E402
from siem.sinks.opensearch import OpenSearchStore  # noqa: E402
from siem.sources.local import local_objects  # noqa: E402
from siem.templates import install_templates  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--dataset", default="aws.alb")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=2000)
    args = parser.parse_args()
    url = os.environ.get("SIEM_OPENSEARCH_URL")
    if not url:
        raise SystemExit("set SIEM_OPENSEARCH_URL (scripts/opensearch-dev start gives one)")
    client = OpenSearch(hosts=[url], timeout=120, http_compress=True)
    with tempfile.TemporaryDirectory() as tmp:
        path, _ = build_input(args.dataset, args.records, Path(tmp))
        forced = formats.get(args.dataset)
        events = [
            item
            for obj in local_objects(path)
            for item in parse_object(obj, Router(), ParseOptions(), forced)
            if isinstance(item, Event)
        ]
        ours_t, ceiling_t = [], []
        for rnd in range(args.rounds):
            prefix = f"bench{rnd}"
            client.indices.delete(index=f"{prefix}*", params={"ignore": 404})
            install_templates(client, prefix)
            store = OpenSearchStore(client, prefix=prefix, batch_size=args.batch)
            bodies = []
            for i in range(0, len(events), args.batch):
                chunk = events[i : i + args.batch]
                bodies.append(
                    b"".join(
                        orjson.dumps({"index": {"_index": f"{prefix}-raw-{store.index_for(e)}", "_id": e.id}})
                        + b"\n"
                        + orjson.dumps(e.doc)
                        + b"\n"
                        for e in chunk
                    )
                )
            start = time.perf_counter()
            for body in bodies:
                response = client.bulk(body=body)
                assert not response["errors"]
            ceiling_t.append(time.perf_counter() - start)
            start = time.perf_counter()
            summary = run(local_objects(path), store, dataset=args.dataset, batch_size=args.batch)
            ours_t.append(time.perf_counter() - start)
            assert summary.written == len(events), summary.render()
            client.indices.delete(index=f"{prefix}*", params={"ignore": 404})
    ceiling, ours = statistics.median(ceiling_t), statistics.median(ours_t)
    n = len(events)
    print(f"{args.dataset}: {n} events, bulk batches of {args.batch}, {args.rounds} rounds (medians)")
    print(f"raw _bulk ceiling (pre-serialised): {n / ceiling:>9,.0f} docs/s")
    print(f"siem load (parse..bulk):            {n / ours:>9,.0f} events/s")
    print(f"ours / ceiling:                     {ceiling / ours:>9.2f}")


if __name__ == "__main__":
    main()
