"""Shared fixtures: the real OpenSearch node and a real S3/SQS endpoint over HTTP.

OpenSearch: ``SIEM_TEST_OPENSEARCH_URL`` if set, otherwise this session starts the repo's
single-node OpenSearch (scripts/opensearch-dev) on ``SIEM_TEST_OPENSEARCH_PORT`` (9250) and stops
it at the end. S3/SQS: moto's threaded server on 127.0.0.1, an HTTP endpoint boto3 talks to like
any other. A service that cannot start fails the tests that need it, loudly — never a skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))

# Property tests explore at random on a developer's machine; in CI they replay a fixed sequence, so a
# landing is never decided by the luck of one run (a local finding becomes a regular test instead).
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def opensearch_url() -> Iterator[str]:
    url = os.environ.get("SIEM_TEST_OPENSEARCH_URL")
    if url:
        yield url
        return
    port = os.environ.get("SIEM_TEST_OPENSEARCH_PORT", "9250")
    env = {**os.environ, "OPENSEARCH_PORT": port}
    script = REPO / "scripts" / "opensearch-dev"
    # A node that was already up (another test session's, a developer's) is used and left running:
    # stopping it at the end would pull it from under whoever started it.
    already_up = subprocess.run([str(script), "status"], env=env, capture_output=True, check=False).returncode == 0
    started = subprocess.run([str(script), "start"], env=env, capture_output=True, text=True, check=False)
    if started.returncode != 0:
        pytest.fail(
            f"OpenSearch could not start (scripts/opensearch-dev start, port {port}):\n{started.stderr[-4000:]}",
            pytrace=False,
        )
    try:
        yield started.stdout.strip().splitlines()[-1]
    finally:
        if not already_up:
            subprocess.run([str(script), "stop"], env=env, capture_output=True, check=False)


@pytest.fixture(scope="session")
def opensearch_client(opensearch_url: str):
    from opensearchpy import OpenSearch

    client = OpenSearch(hosts=[opensearch_url], timeout=60)
    info = client.info()
    assert info["version"]["number"].startswith("2.19."), info
    yield client
    client.close()


@pytest.fixture
def index_prefix(opensearch_client) -> Iterator[str]:
    """A prefix of our own per test, so tests never see each other's indices; cleaned up after."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield prefix
    opensearch_client.indices.delete(index=f"{prefix}-*", params={"ignore_unavailable": "true", "ignore": 404})
    for name in ("events", "deadletter", "alerts", "outbox"):
        opensearch_client.indices.delete_index_template(name=f"{prefix}-{name}", params={"ignore": 404})
    for name in ("settings", "ecs"):
        opensearch_client.cluster.delete_component_template(name=f"{prefix}-{name}", params={"ignore": 404})


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    """moto's S3/SQS server on 127.0.0.1 (a random free port), with dummy credentials."""
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(aws_endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=aws_endpoint, region_name="us-east-1")


@pytest.fixture
def bucket(s3) -> str:
    name = f"logs-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name
