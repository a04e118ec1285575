"""`siem dashboards install|export` against a scripted Dashboards saved-objects API on 127.0.0.1.

A scripted fake, on purpose: OpenSearch Dashboards (a Node.js server) cannot run on our machines,
so a real `http.server` on 127.0.0.1 plays its import and export endpoints, records every request
(path, query, headers, multipart body) and answers as Dashboards 2.19 does: per-object success
and error lists, 401 for bad credentials, 500, the export NDJSON with its bookkeeping and summary.
"""

from __future__ import annotations

import base64
import json
import threading
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from _dashboards_check import NDJSON, objects

from siem.cli import main

COMMITTED = objects()


class FakeDashboards(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict] = []
        self.status = 200
        self.fail_ids: set[str] = set()
        self.stored: list[dict] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeDashboards

    def log_message(self, *args) -> None:  # quiet test output
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        parts = urlsplit(self.path)
        self.server.requests.append(
            {"path": parts.path, "query": parse_qs(parts.query), "headers": dict(self.headers), "body": body}
        )
        if self.server.status == 401:
            return self._json(401, {"statusCode": 401, "error": "Unauthorized", "message": "Authentication required"})
        if self.server.status == 500:
            return self._json(
                500, {"statusCode": 500, "error": "Internal Server Error", "message": "index .kibana is read-only"}
            )
        if parts.path == "/api/saved_objects/_import":
            return self._import(body)
        if parts.path == "/api/saved_objects/_export":
            return self._export(json.loads(body))
        return self._json(404, {"statusCode": 404, "error": "Not Found", "message": "Not Found"})

    def _import(self, body: bytes) -> None:
        uploaded = _multipart_file(self.headers["content-type"], body)
        objs = [json.loads(line) for line in uploaded["content"].splitlines() if line.strip()]
        ok = [o for o in objs if o["id"] not in self.server.fail_ids]
        errors = [
            {
                "id": o["id"],
                "type": o["type"],
                "title": o["attributes"]["title"],
                "meta": {"title": o["attributes"]["title"], "icon": "visualizeApp"},
                "error": {"type": "missing_references", "references": [{"type": "index-pattern", "id": "gone"}]},
            }
            for o in objs
            if o["id"] in self.server.fail_ids
        ]
        results = [
            {"type": o["type"], "id": o["id"], "meta": {"title": o["attributes"]["title"]}, "overwrite": True}
            for o in ok
        ]
        self._json(200, {"success": not errors, "successCount": len(ok), "successResults": results, "errors": errors})

    def _export(self, request: dict) -> None:
        stored = {(o["type"], o["id"]): o for o in self.server.stored}
        missing = [o for o in request["objects"] if (o["type"], o["id"]) not in stored]
        if missing:
            failed = [{**o, "error": {"statusCode": 404, "message": "Not found"}} for o in missing]
            return self._json(
                400,
                {
                    "statusCode": 400,
                    "error": "Bad Request",
                    "message": "Error fetching objects to export",
                    "attributes": {"objects": failed},
                },
            )
        lines = [json.dumps(stored[(o["type"], o["id"])]) for o in request["objects"]]
        lines.append(json.dumps({"exportedCount": len(lines), "missingRefCount": 0, "missingReferences": []}))
        self._send(200, "\n".join(lines).encode(), "application/ndjson")

    def _json(self, status: int, body: dict) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _send(self, status: int, data: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _multipart_file(content_type: str, body: bytes) -> dict:
    message = BytesParser(policy=HTTP).parsebytes(f"content-type: {content_type}\r\n\r\n".encode() + body)
    (part,) = [p for p in message.iter_parts() if p.get_param("name", header="content-disposition") == "file"]
    return {
        "filename": part.get_filename(),
        "content": part.get_payload(decode=True).decode(),
        "type": part.get_content_type(),
    }


@pytest.fixture
def dashboards(monkeypatch):
    server = FakeDashboards()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    for name in (
        "SIEM_OPENSEARCH_URL",
        "SIEM_OPENSEARCH_USERNAME",
        "SIEM_OPENSEARCH_AWS_REGION",
        "SIEM_DASHBOARDS_USERNAME",
        "SIEM_DASHBOARDS_PASSWORD",
        "SIEM_OPENSEARCH_INDEX_PREFIX",
        "SIEM_CONFIG",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SIEM_DASHBOARDS_URL", server.url)
    yield server
    server.shutdown()
    server.server_close()


def test_install_posts_the_file_with_overwrite_xsrf_tenant_and_basic_auth(dashboards, monkeypatch, capsys):
    monkeypatch.setenv("SIEM_DASHBOARDS_USERNAME", "soc-admin")
    monkeypatch.setenv("SIEM_DASHBOARDS_PASSWORD", "s3cret-pw")
    assert main(["dashboards", "install", "--tenant", "global"]) == 0
    (request,) = dashboards.requests
    assert request["path"] == "/api/saved_objects/_import" and request["query"] == {"overwrite": ["true"]}
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["osd-xsrf"] == "true" and headers["securitytenant"] == "global"
    assert headers["authorization"] == "Basic " + base64.b64encode(b"soc-admin:s3cret-pw").decode()
    uploaded = _multipart_file(headers["content-type"], request["body"])
    assert uploaded["filename"] == "siem.ndjson" and uploaded["type"] == "application/ndjson"
    assert uploaded["content"] == NDJSON.read_text(encoding="utf-8")
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == len(COMMITTED)
    assert lines[0].split()[:3] == ["ok", "index-pattern", "siem-alerts"] and "overwritten" in lines[0]
    assert any(line.split()[:3] == ["ok", "dashboard", "siem-dash-soc-overview"] for line in lines)
    assert err.strip() == f"imported {len(COMMITTED)} of {len(COMMITTED)} objects into {dashboards.url} (tenant global)"


def test_install_retitles_index_patterns_for_another_index_prefix(dashboards, monkeypatch):
    monkeypatch.setenv("SIEM_OPENSEARCH_INDEX_PREFIX", "acme")
    assert main(["dashboards", "install"]) == 0
    headers = {k.lower(): v for k, v in dashboards.requests[0]["headers"].items()}
    assert "securitytenant" not in headers and "authorization" not in headers
    uploaded = _multipart_file(headers["content-type"], dashboards.requests[0]["body"])
    titles = {
        o["id"]: o["attributes"]["title"]
        for o in map(json.loads, uploaded["content"].splitlines())
        if o["type"] == "index-pattern"
    }
    assert titles == {
        "siem-events": "acme-events-*",
        "siem-alerts": "acme-alerts",
        "siem-deadletter": "acme-deadletter",
    }


def test_install_reports_each_refused_object_and_exits_1(dashboards, capsys):
    dashboards.fail_ids = {"siem-vis-waf-blocks", "siem-dash-web"}
    assert main(["dashboards", "install", "--url", dashboards.url]) == 1
    out, err = capsys.readouterr()
    failed = [line for line in out.splitlines() if line.startswith("FAILED")]
    assert [line.split()[1:3] for line in failed] == [
        ["visualization", "siem-vis-waf-blocks"],
        ["dashboard", "siem-dash-web"],
    ]
    assert "missing_references: index-pattern gone" in failed[0]
    assert f"imported {len(COMMITTED) - 2} of {len(COMMITTED)} objects" in err


def test_install_turns_401_into_one_line_without_the_password(dashboards, monkeypatch, capsys):
    dashboards.status = 401
    monkeypatch.setenv("SIEM_DASHBOARDS_USERNAME", "soc-admin")
    monkeypatch.setenv("SIEM_DASHBOARDS_PASSWORD", "s3cret-pw")
    assert main(["dashboards", "install"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1
    assert "HTTP 401" in err and "SIEM_DASHBOARDS_PASSWORD" in err and "s3cret-pw" not in err


def test_install_turns_a_server_error_into_one_line_with_its_message(dashboards, capsys):
    dashboards.status = 500
    assert main(["dashboards", "install"]) == 2
    err = capsys.readouterr().err
    assert err == f"siem: Dashboards at {dashboards.url} answered HTTP 500: index .kibana is read-only\n"


def test_install_on_a_closed_port_says_unreachable(monkeypatch, capsys):
    monkeypatch.setenv("SIEM_DASHBOARDS_URL", "http://user:pw-in-url@127.0.0.1:9")
    assert main(["dashboards", "install"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("siem: Dashboards at http://127.0.0.1:9 unreachable") and "pw-in-url" not in err


def test_install_without_a_url_names_the_setting(monkeypatch, capsys):
    monkeypatch.delenv("SIEM_DASHBOARDS_URL", raising=False)
    assert main(["dashboards", "install"]) == 2
    assert "SIEM_DASHBOARDS_URL" in capsys.readouterr().err


def test_install_signs_with_sigv4_for_amazon_opensearch_service(dashboards, monkeypatch):
    monkeypatch.setenv("SIEM_OPENSEARCH_AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    assert main(["dashboards", "install"]) == 0
    headers = {k.lower(): v for k, v in dashboards.requests[0]["headers"].items()}
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/es/aws4_request" in headers["authorization"] and "x-amz-date" in headers


def test_export_writes_back_the_same_lines_when_nothing_changed_in_dashboards(dashboards, tmp_path: Path, capsys):
    # What Dashboards returns: bookkeeping added, the field list filled in, JSON strings re-serialised.
    for obj in COMMITTED:
        stored = {**obj, "updated_at": "2026-11-29T01:02:03.000Z", "version": "WzEyLDFd", "namespaces": ["default"]}
        attributes = dict(obj["attributes"])
        if obj["type"] == "visualization":
            attributes["visState"] = json.dumps(json.loads(attributes["visState"]), indent=1)
        if obj["type"] == "index-pattern":
            attributes["fields"] = '[{"name":"@timestamp","type":"date"}]'
        dashboards.stored.append({**stored, "attributes": attributes})
    assert main(["dashboards", "export", "--out", str(tmp_path)]) == 0
    (request,) = dashboards.requests
    assert request["path"] == "/api/saved_objects/_export"
    assert {k.lower(): v for k, v in request["headers"].items()}["osd-xsrf"] == "true"
    asked = json.loads(request["body"])
    assert asked["includeReferencesDeep"] is False
    assert {(o["type"], o["id"]) for o in asked["objects"]} == {(o["type"], o["id"]) for o in COMMITTED}
    assert (tmp_path / "siem.ndjson").read_text(encoding="utf-8") == NDJSON.read_text(encoding="utf-8")
    assert capsys.readouterr().err.startswith(f"exported {len(COMMITTED)} objects to {tmp_path / 'siem.ndjson'}")


def test_export_shows_a_change_made_in_the_ui_as_a_one_line_diff(dashboards, tmp_path: Path):
    dashboards.stored = [dict(o) for o in COMMITTED]
    index = next(i for i, o in enumerate(COMMITTED) if o["id"] == "siem-dash-soc-overview")
    dashboards.stored[index] = {
        **COMMITTED[index],
        "attributes": {**COMMITTED[index]["attributes"], "title": "SOC (edited)"},
    }
    assert main(["dashboards", "export", "--out", str(tmp_path)]) == 0
    before = NDJSON.read_text(encoding="utf-8").splitlines()
    after = (tmp_path / "siem.ndjson").read_text(encoding="utf-8").splitlines()
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert changed == [index] and json.loads(after[index])["attributes"]["title"] == "SOC (edited)"


def test_export_names_the_objects_dashboards_does_not_have(dashboards, tmp_path: Path, capsys):
    dashboards.stored = [o for o in COMMITTED if o["id"] != "siem-search-ip"]
    assert main(["dashboards", "export", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "HTTP 400" in err and "search siem-search-ip" in err
    assert not (tmp_path / "siem.ndjson").exists()


def test_install_pointed_at_opensearch_itself_says_so(opensearch_url, monkeypatch, capsys):
    monkeypatch.setenv("SIEM_DASHBOARDS_URL", opensearch_url)  # the real node: a common mix-up
    assert main(["dashboards", "install"]) == 2
    err = capsys.readouterr().err
    assert "HTTP 400" in err and "looks like OpenSearch itself; give the Dashboards URL" in err


def test_install_of_a_missing_file_is_one_line(dashboards, tmp_path: Path, capsys):
    assert main(["dashboards", "install", "--file", str(tmp_path / "nope.ndjson")]) == 2
    assert capsys.readouterr().err == f"siem: {tmp_path / 'nope.ndjson'}: No such file or directory\n"
    assert dashboards.requests == []


def test_install_falls_back_to_the_opensearch_user_for_basic_auth(dashboards, monkeypatch):
    monkeypatch.setenv("SIEM_OPENSEARCH_USERNAME", "siem-writer")
    monkeypatch.setenv("SIEM_OPENSEARCH_PASSWORD", "os-pw")
    assert main(["dashboards", "install"]) == 0
    headers = {k.lower(): v for k, v in dashboards.requests[0]["headers"].items()}
    assert headers["authorization"] == "Basic " + base64.b64encode(b"siem-writer:os-pw").decode()


def test_the_url_comes_from_the_config_file_and_a_password_there_is_refused(dashboards, monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("SIEM_DASHBOARDS_URL")
    config = tmp_path / "siem.yml"
    config.write_text(f"dashboards:\n  url: {dashboards.url}\n", encoding="utf-8")
    assert main(["--config", str(config), "dashboards", "install"]) == 0
    assert len(dashboards.requests) == 1
    config.write_text(f"dashboards:\n  url: {dashboards.url}\n  password: hunter2\n", encoding="utf-8")
    assert main(["--config", str(config), "dashboards", "install"]) == 2
    err = capsys.readouterr().err
    assert "dashboards.password" in err and "SIEM_DASHBOARDS_PASSWORD" in err and "hunter2" not in err
