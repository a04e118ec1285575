"""A backfill through a faulty network ends exact: every event once, none lost, none doubled.

`siem load` (a child process) reads 40 small ALB objects from moto's S3 and writes to the real
OpenSearch node through tests/_fault_proxy.py, a TCP proxy that injects HTTP 429 and 503 answers,
connection resets before the node sees a request and after it has processed one (written but never
acknowledged), and stalls longer than the client's timeout, on a seeded schedule over the bulk
requests. The proxy is a scripted fault in front of the real node: the node cannot produce these
faults on demand, which is the one case the project allows a scripted fake. On top of that the
loader is killed with SIGKILL at seeded points (counted in bulk requests, so the kills land
mid-run whatever the machine's speed) three times, then run until it finishes. That last run gets a
schedule of its own (FINAL_SEED) holding every kind of fault within its first 14 bulk requests, so
the run whose objects the ledger records as done has met each fault: mishandling any of them (an
error taken for success, a resend that is not idempotent) shows in the count.

The expected total is known by hand: 40 objects x 20 lines, every line a valid ALB entry.
"""

from __future__ import annotations

import gzip
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

from _fault_proxy import FAULTS, FaultProxy

from siem.templates import install_templates

REPO = Path(__file__).resolve().parents[1]
ALB_LINE = (
    "http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:{port} 10.0.0.1:80"
    ' 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - -'
    " arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067"
    ' "Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-"'
    ' "10.0.0.1:80" "200" "-" "-"'
)
OBJECTS = 40
LINES_PER_OBJECT = 20
EXPECTED_EVENTS = 800  # 40 x 20, by hand
KILLS = 3
SEED = 8
# Draws 1: 503, 3: stall, 4: 429, 9: reset_response, 13: reset_request (fault_rate 0.35), and no more than
# two faults in a row in its first 60 draws: a long run costs 0.5+1+2+4 s of backoff and the test time.
FINAL_SEED = 723
# sinks/opensearch.py's StoreUnavailable messages when its retries are spent
GAVE_UP = re.compile(rb"bulk request (failed after \d+ retries|of \d+ bytes timed out \d+ times)")


def _put_objects(s3, bucket: str) -> None:
    for n in range(OBJECTS):
        body = "\n".join(ALB_LINE.format(port=1000 + n * 100 + i) for i in range(LINES_PER_OBJECT)) + "\n"
        key = f"AWSLogs/123456789012/elasticloadbalancing/us-east-2/2018/07/02/alb-{n:03d}.log.gz"
        s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(body.encode()))


def _spawn(bucket: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "siem.cli", "load", "--no-templates", f"s3://{bucket}/AWSLogs/"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _all_hits(client, prefix: str) -> list[dict]:
    client.indices.refresh(index=f"{prefix}-events-*")
    response = client.search(
        index=f"{prefix}-events-*",
        body={"query": {"match_all": {}}, "size": 5000, "_source": ["log.file.path", "log.offset"]},
    )
    return response["hits"]["hits"]


def test_backfill_through_faulty_proxy_with_kill9_restarts_ends_exact(
    opensearch_url, opensearch_client, index_prefix, aws_endpoint, s3, bucket, tmp_path
) -> None:
    _put_objects(s3, bucket)
    install_templates(opensearch_client, index_prefix)
    node = urlsplit(opensearch_url)
    rng = random.Random(SEED)
    with FaultProxy((node.hostname, node.port), seed=SEED, fault_rate=0.35, stall_seconds=1.5) as proxy:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SIEM_")},
            "SIEM_OPENSEARCH_URL": proxy.url,
            "SIEM_OPENSEARCH_INDEX_PREFIX": index_prefix,
            "SIEM_OPENSEARCH_BULK_BATCH": "50",  # 16 bulk requests a pass: many chances for a fault
            "SIEM_OPENSEARCH_TIMEOUT": "1",  # a 1.5 s stall is a read timeout
            "SIEM_DATA_DIR": str(tmp_path / "data"),
            "AWS_ENDPOINT_URL": aws_endpoint,
        }
        kills = 0
        for _ in range(KILLS):
            proc = _spawn(bucket, env)
            target = proxy.matching + rng.randint(1, 4)
            deadline = time.monotonic() + 30
            while proxy.matching < target and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(rng.uniform(0, 0.2))  # anywhere inside a request, a backoff, or between objects
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += proc.returncode == -signal.SIGKILL

        proxy.reseed(FINAL_SEED)
        before_final = Counter(proxy.counts)
        gave_up = 0
        for _ in range(10):  # until one run finishes; a run may give up on a store that keeps failing
            proc = _spawn(bucket, env)
            _, stderr = proc.communicate(timeout=120)
            if proc.returncode == 0:
                break
            # Exit 2 naming the bulk request is the loader giving up on a store that failed every one of
            # its bounded retries (or timed out twice): documented, nothing acknowledged is lost, and the
            # restart resumes. Any other failure is a bug.
            assert proc.returncode == 2, stderr.decode()[-3000:]
            assert GAVE_UP.search(stderr), stderr.decode()[-3000:]
            gave_up += 1
        assert proc.returncode == 0, stderr.decode()[-3000:]

    assert kills == KILLS, "every kill must land while the loader is still running"
    injected = {fault: proxy.counts[fault] - before_final[fault] for fault in FAULTS}
    assert all(injected.values()), f"the last run must have met every kind of fault: {injected}"
    hits = _all_hits(opensearch_client, index_prefix)
    positions = {(h["_source"]["log"]["file"]["path"], h["_source"]["log"]["offset"]) for h in hits}
    assert len(hits) == EXPECTED_EVENTS, (len(hits), injected, gave_up)
    assert len({h["_id"] for h in hits}) == EXPECTED_EVENTS
    assert len(positions) == EXPECTED_EVENTS  # one document per line: no line stored twice under two ids
    letters = opensearch_client.count(index=f"{index_prefix}-deadletter", params={"ignore_unavailable": "true"})
    assert letters["count"] == 0, "a network fault must never turn an event into a dead letter"
