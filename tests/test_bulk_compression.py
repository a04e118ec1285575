"""Bulk bodies go to OpenSearch gzipped at a fast level (siem.sinks.opensearch._FastGzip).

GzipFile's default level 9 cost the client ~50 µs per ALB document, which on one machine is CPU
the node does not get. A small HTTP server on 127.0.0.1 records what arrives, so the test sees the
body on the wire, whatever connection class opensearch-py picks: an upgrade that dropped the hook
would fail here instead of silently compressing at level 9 again.
"""

from __future__ import annotations

import gzip
import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest

from siem.config import load_settings
from siem.sinks.opensearch import make_client


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    seen: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            seen.append(({k.lower(): v for k, v in self.headers.items()}, body))
            reply = b'{"took":1,"errors":false,"items":[]}'
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()


def _bulk_body(n: int) -> bytes:
    rng = random.Random(7)
    lines = []
    for i in range(n):
        ip = ".".join(str(rng.randrange(256)) for _ in range(4))
        doc = {"@timestamp": f"2026-03-09T10:{i % 60:02}:{rng.randrange(60):02}Z", "source": {"ip": ip}}
        doc["url"] = {"path": f"/api/{rng.randrange(10**6)}/items", "query": f"q={rng.random()}"}
        lines += [b'{"index":{"_index":"siem-events-aws.elb-2026"}}', orjson.dumps(doc)]
    return b"\n".join(lines) + b"\n"


def test_a_bulk_body_arrives_gzipped_at_level_3_not_9(receiver) -> None:
    url, seen = receiver
    client = make_client(load_settings(env={"SIEM_OPENSEARCH_URL": url}))
    body = _bulk_body(2000)
    client.transport.perform_request("POST", "/_bulk", body=body)
    ((headers, wire),) = seen
    assert headers["content-encoding"] == "gzip"
    assert gzip.decompress(wire) == body
    fast, best = gzip.compress(body, compresslevel=3), gzip.compress(body, compresslevel=9)
    assert len(fast) != len(best)  # the two levels are told apart by size on this body
    assert len(wire) == len(fast)
