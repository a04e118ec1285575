"""Authentication to OpenSearch as it goes over the wire: SigV4 (Amazon OpenSearch Service) and basic auth.

A small HTTP server on 127.0.0.1 records the request headers; no AWS account is needed to see
that requests are signed with boto3's credentials, and that secrets do not reach error output.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from siem.cli import main
from siem.config import load_settings
from siem.sinks.opensearch import make_client


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append({k.lower(): v for k, v in self.headers.items()})
            body = json.dumps({"version": {"number": "2.19.6"}}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()


def test_sigv4_signs_with_boto3_credentials(recorder) -> None:
    url, seen = recorder
    env = {
        "SIEM_OPENSEARCH_URL": url,
        "SIEM_OPENSEARCH_AWS_REGION": "ap-northeast-1",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        client = make_client(load_settings(env=env))
        assert client.info()["version"]["number"] == "2.19.6"
    auth = seen[0]["authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/ap-northeast-1/es/aws4_request" in auth
    assert "x-amz-date" in seen[0]
    assert env["AWS_SECRET_ACCESS_KEY"] not in json.dumps(seen)


def test_basic_auth_password_only_from_environment(recorder) -> None:
    url, seen = recorder
    env = {"SIEM_OPENSEARCH_URL": url, "SIEM_OPENSEARCH_USERNAME": "writer", "SIEM_OPENSEARCH_PASSWORD": "s3cret"}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIEM_OPENSEARCH_PASSWORD", "s3cret")
        make_client(load_settings(env=env)).info()
    assert seen[0]["authorization"] == "Basic d3JpdGVyOnMzY3JldA=="  # writer:s3cret


def test_secrets_never_reach_error_output(monkeypatch, capsys) -> None:
    monkeypatch.setenv("SIEM_OPENSEARCH_URL", "http://writer:hunter2@127.0.0.1:9")
    monkeypatch.setenv("SIEM_OPENSEARCH_PASSWORD", "hunter2")
    monkeypatch.setenv("SIEM_OPENSEARCH_MAX_RETRIES", "0")
    assert main(["templates", "install"]) == 2
    err = capsys.readouterr().err
    assert "OpenSearch error" in err
    assert "hunter2" not in err


def test_tls_verification_is_on_by_default() -> None:
    settings = load_settings(env={"SIEM_OPENSEARCH_URL": "https://search.example:9200"})
    client = make_client(settings)
    connection = client.transport.connection_pool.connections[0]
    assert settings.opensearch["verify_certs"] is True
    assert connection.pool.cert_reqs == "CERT_REQUIRED"
