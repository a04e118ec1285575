"""The saved-objects API of OpenSearch Dashboards: import (install) and export, one clear line on failure.

Dashboards (not OpenSearch) serves ``/api/saved_objects/_import`` and ``_export``; every write needs
the ``osd-xsrf`` header, a multi-tenant cluster (security plugin) picks the tenant from the
``securitytenant`` header, and Amazon OpenSearch Service signs requests with SigV4 (service ``es``)
like the cluster itself. Credentials come from the environment only and never appear in a message.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from siem.cli_common import UserError
from siem.config import Settings
from siem.sinks.opensearch import redact_url

TIMEOUT = 60  # seconds; an import of our ~70 objects takes well under one on a healthy Dashboards
_HINTS = {
    401: "the credentials were refused: set SIEM_DASHBOARDS_USERNAME and SIEM_DASHBOARDS_PASSWORD",
    403: "this user may not manage saved objects (in this tenant)",
    404: "no saved-objects API there: is it the Dashboards URL (not OpenSearch's), with its base path?",
}


@dataclass(frozen=True)
class ObjectResult:
    """What Dashboards said about one object of an import."""

    type: str
    id: str
    title: str
    ok: bool
    detail: str  # "created", "overwritten", or the error ("missing_references: index-pattern x")


class DashboardsClient:
    def __init__(self, settings: Settings, url: str | None = None, tenant: str | None = None) -> None:
        url = url or settings.dashboards["url"]
        if not url:
            raise UserError("no Dashboards URL: pass --url or set SIEM_DASHBOARDS_URL (or dashboards.url)")
        if not url.startswith(("http://", "https://")) or not urlsplit(url).hostname:
            raise UserError(f"Dashboards URL {redact_url(url)!r}: expected an http:// or https:// URL")
        self.url = url.rstrip("/")
        self.shown_url = redact_url(self.url)
        self.session = requests.Session()
        self.session.headers["osd-xsrf"] = "true"
        if tenant:
            self.session.headers["securitytenant"] = tenant
        cfg = settings.opensearch
        self.session.verify = cfg["ca_certs"] or cfg["verify_certs"]
        candidates = (os.environ.get("SIEM_DASHBOARDS_PASSWORD"), settings.opensearch_password, urlsplit(url).password)
        self._secrets = [s for s in candidates if s]
        self.session.auth = _auth(settings)

    def _post(self, path: str, **kwargs: Any) -> requests.Response:
        try:
            response = self.session.post(f"{self.url}{path}", timeout=TIMEOUT, **kwargs)
        except requests.exceptions.SSLError:
            raise UserError(
                f"TLS verification failed for {self.shown_url}: set opensearch.ca_certs to the CA that signed it"
            ) from None
        except requests.Timeout:
            raise UserError(f"Dashboards at {self.shown_url}: no answer within {TIMEOUT} s") from None
        except requests.RequestException as exc:
            why = "connection refused or host not found" if isinstance(exc, requests.ConnectionError) else "failed"
            raise UserError(f"Dashboards at {self.shown_url} unreachable: {why} ({type(exc).__name__})") from None
        if response.status_code >= 400:
            hint = _HINTS.get(response.status_code, "")
            said = self._clean(_message(response))
            detail = "; ".join(part for part in (hint, said) if part)
            raise UserError(f"Dashboards at {self.shown_url} answered HTTP {response.status_code}: {detail}")
        return response

    def _clean(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return " ".join(text.split())[:300]

    def import_ndjson(self, ndjson: bytes, filename: str = "siem.ndjson") -> list[ObjectResult]:
        """POST the file to the import API with overwrite; one result per object, in the file's order."""
        response = self._post(
            "/api/saved_objects/_import",
            params={"overwrite": "true"},
            files={"file": (filename, ndjson, "application/ndjson")},
        )
        body = _json(response, "import")
        results = []
        for item in body.get("successResults") or []:
            detail = "overwritten" if item.get("overwrite") else "created"
            results.append(ObjectResult(item["type"], item["id"], _title(item), True, detail))
        for item in body.get("errors") or []:
            results.append(ObjectResult(item["type"], item["id"], _title(item), False, _error_text(item.get("error"))))
        order = {(o["type"], o["id"]): i for i, o in enumerate(_objects(ndjson))}
        return sorted(results, key=lambda r: order.get((r.type, r.id), len(order)))

    def export(self, objects: list[dict[str, str]]) -> list[dict[str, Any]]:
        """The named objects as Dashboards holds them now (the export's summary line dropped)."""
        response = self._post(
            "/api/saved_objects/_export",
            json={"objects": objects, "includeReferencesDeep": False},
            headers={"content-type": "application/json"},
        )
        exported = []
        for line in response.text.splitlines():
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                raise UserError(f"Dashboards at {self.shown_url}: the export is not NDJSON") from None
            if "exportedCount" not in obj:
                exported.append(obj)
        return exported


def _auth(settings: Settings) -> Any:
    """SigV4 when the cluster is Amazon OpenSearch Service, else basic auth when a user is configured."""
    if settings.opensearch["aws_region"]:
        import boto3
        from requests_aws4auth import AWS4Auth

        credentials = boto3.Session().get_credentials()
        if credentials is None:
            raise UserError("SigV4 requested (opensearch.aws_region) but boto3 found no AWS credentials")
        frozen = credentials.get_frozen_credentials()
        region = settings.opensearch["aws_region"]
        return AWS4Auth(frozen.access_key, frozen.secret_key, region, "es", session_token=frozen.token)
    username = settings.dashboards["username"] or settings.opensearch["username"]
    if not username:
        return None
    password = os.environ.get("SIEM_DASHBOARDS_PASSWORD") or settings.opensearch_password or ""
    return (username, password)


def _objects(ndjson: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ndjson.decode("utf-8").splitlines() if line.strip()]


def _json(response: requests.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise UserError(f"the {what} answer (HTTP {response.status_code}) is not JSON: is the URL Dashboards'?")
    return body


def _message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):  # OpenSearch's own error shape: the URL points at the cluster
            said = str(error.get("reason") or error.get("type") or error)
            return f"{said} (this looks like OpenSearch itself; give the Dashboards URL)"
        said = str(body.get("message") or error or body)
        if "no handler found" in said:  # OpenSearch answers the API paths of Dashboards with this
            said += " (this looks like OpenSearch itself; give the Dashboards URL)"
        failed = (body.get("attributes") or {}).get("objects") or []  # export: which objects are missing
        if failed:
            said += ": " + ", ".join(f"{o.get('type')} {o.get('id')}" for o in failed[:10] if isinstance(o, dict))
        return said
    return str(body)


def _title(item: dict[str, Any]) -> str:
    return str((item.get("meta") or {}).get("title") or item.get("title") or "")


def _error_text(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error)
    kind = str(error.get("type") or "error")
    refs = error.get("references") or []
    if refs:
        return f"{kind}: " + ", ".join(f"{r.get('type')} {r.get('id')}" for r in refs)
    message = error.get("message") or error.get("reason")
    return f"{kind}: {message}" if message else kind
