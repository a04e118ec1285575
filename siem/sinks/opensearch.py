"""OpenSearch store: bulk indexing with backoff on 429, rejects dead-lettered, never dropped.

Indices are ``<prefix>-events-<family>-<yyyy>`` (or ``<yyyy.mm>``, or ``-outliers``; see
index_layout.py): with deterministic document IDs a re-load lands on the same index and overwrites,
and retention is deleting old periods. A node at its shard limit stops the run with one line. Bulk
bodies are serialised with orjson and sent as bytes; the per-item retry loop is ours so that a 429
on some items retries only those items, and a mapping rejection becomes a dead letter with its
reason instead of an exception that loses the batch. Requests are sized by bytes
(limits.MAX_BULK_BYTES; a 413 splits one), an event that cannot be serialised is a dead letter,
and the client's own retries are bypassed for bulk so a timeout never multiplies the load.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
from opensearchpy import OpenSearch, RequestsHttpConnection, Urllib3HttpConnection
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import ConnectionTimeout, TransportError

from siem import limits
from siem.normalize import utc_now_iso
from siem.pipeline import RAW_LIMIT, DeadLetter, Event
from siem.sinks import EventQuery
from siem.sinks.index_layout import IndexLayout, shard_limit_message

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 502, 503, 504})
TIMEOUT_RESENDS = 1  # a bulk body that timed out is sent once more, after a backoff, then we stop
_BULK_HEADERS = {"content-type": "application/json"}


def letter_id(letter: DeadLetter) -> str:
    """A dead letter's document id: where (path, offset, stage) and what and why (reason and raw). Several
    bad records can share an offset (the records of one CloudWatch Logs document); the same object loaded
    twice gives the same letters, so a re-run overwrites them instead of adding more. A document the
    cluster rejected is known by its deterministic event id (its raw carries event.ingested, new each run)."""
    what = ("event", letter.id) if letter.id else (letter.reason, letter.raw or "")
    parts = (letter.path, str(letter.offset), letter.stage, *what)
    return hashlib.blake2b("\0".join(parts).encode(), digest_size=16).hexdigest()


class _TooLarge(Exception):
    """HTTP 413: the bulk body is over the cluster's http.max_content_length."""

    def __init__(self, size: int) -> None:
        super().__init__(f"bulk body of {size} bytes refused (HTTP 413)")
        self.size = size


class StoreUnavailable(RuntimeError):
    """OpenSearch could not take the writes even after retries; nothing was dropped silently."""


class PartialAnswer(StoreUnavailable):
    """Some shards failed a search (a circuit breaker on a busy node, a shard relocating): the node
    still answers 200 with what the other shards found. A detection, a value list or a timeline
    built on that would silently miss events, so the answer is refused instead; the cycle reports
    the rule and retries it with its checkpoint kept."""


def missing_shards(response: dict[str, Any]) -> PartialAnswer | None:
    """What is missing from ``response`` (a search, count, scroll, point-in-time or ``_msearch``
    item): None if every shard answered, else the ``PartialAnswer`` naming how many did not and the
    first reason. A shard that is not assigned (a red index) is counted in ``total`` but neither
    failed nor successful, so the check is on what answered, not only on ``failed``."""
    shards = response.get("_shards")
    if not shards:
        return None
    total = shards.get("total", 0)
    missing = total - shards.get("successful", 0) - shards.get("skipped", 0)
    if missing <= 0 and not shards.get("failed"):
        return None
    failures = shards.get("failures") or []
    reason = (failures[0].get("reason") or {}) if failures else {}
    why = f"{reason.get('type')}: {' '.join(str(reason.get('reason', '')).split())[:300]}" if reason else "unassigned"
    return PartialAnswer(
        f"{max(missing, shards.get('failed', 0))} of {total} shards did not answer ({why});"
        " nothing was decided on the partial answer"
    )


def whole(response: dict[str, Any]) -> dict[str, Any]:
    """``response`` if every shard answered, else raises its ``missing_shards``."""
    problem = missing_shards(response)
    if problem is not None:
        raise problem
    return response


def whole_search(client: Any, **kwargs: Any) -> dict[str, Any]:
    """``client.search(**kwargs)``, refused when a shard did not answer (``whole``)."""
    return whole(client.search(**kwargs))


class ShardLimitReached(StoreUnavailable):
    """The node refused to create an index: the cluster is at cluster.max_shards_per_node. Every later
    event for a new index would fail the same way, so the run stops with one line saying what to do."""


def redact_url(url: str) -> str:
    """The URL without credentials, for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class _FastGzip:
    """Request bodies gzipped at level 3 instead of GzipFile's default 9: on a bulk body of ALB
    documents level 9 costs the client ~50 µs a document for a body a quarter smaller, and on a
    machine the node shares every CPU-second the client takes is one the node does not index with.
    (A hook of opensearch-py's Connection; tests/test_bulk_compression.py sees the level on the wire.)"""

    def _gzip_compress(self, body: bytes) -> bytes:
        return gzip.compress(body, compresslevel=3)


class _Urllib3Connection(_FastGzip, Urllib3HttpConnection):
    pass


class _RequestsConnection(_FastGzip, RequestsHttpConnection):
    pass


def make_client(settings: Any) -> OpenSearch:
    """A client from settings: basic auth from the environment, or SigV4 when aws_region is set."""
    cfg = settings.opensearch
    url = cfg["url"]
    kwargs: dict[str, Any] = {
        "hosts": [url],
        "verify_certs": cfg["verify_certs"],
        "ssl_show_warn": cfg["verify_certs"],
        "timeout": cfg["timeout"],
        "http_compress": True,
        "connection_class": _Urllib3Connection,
    }
    if cfg["ca_certs"]:
        kwargs["ca_certs"] = cfg["ca_certs"]
    if cfg["aws_region"]:
        import boto3
        from requests_aws4auth import AWS4Auth

        credentials = boto3.Session().get_credentials()
        if credentials is None:
            raise StoreUnavailable("SigV4 requested (opensearch.aws_region) but boto3 found no AWS credentials")
        frozen = credentials.get_frozen_credentials()
        kwargs["http_auth"] = AWS4Auth(
            frozen.access_key, frozen.secret_key, cfg["aws_region"], cfg["aws_service"], session_token=frozen.token
        )
        kwargs["connection_class"] = _RequestsConnection
    elif cfg["username"]:
        kwargs["http_auth"] = (cfg["username"], settings.opensearch_password or "")
    return OpenSearch(**kwargs)


class OpenSearchStore:
    name = "opensearch"
    # written behind the parsing (pipeline.run): the node indexes a bulk request while the next batch
    # is parsed; the client's connection pool serves both threads
    concurrent = True

    def __init__(
        self,
        client: OpenSearch,
        prefix: str = "siem",
        max_retries: int = 5,
        initial_backoff: float = 0.5,
        max_backoff: float = 30.0,
        refresh: bool = False,
        batch_size: int = 2000,
        max_bulk_bytes: int = limits.MAX_BULK_BYTES,
        index_period: str = "year",
        monthly_families: tuple[str, ...] | list[str] = (),
    ) -> None:
        self.client = client
        self.batch_size = batch_size
        self.max_bulk_bytes = max_bulk_bytes
        self.prefix = prefix
        self.max_retries = max_retries
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self._refresh = "true" if refresh else "false"
        self.layout = IndexLayout(prefix, index_period, monthly_families)
        self.events_pattern = self.layout.pattern
        self.deadletter_index = f"{prefix}-deadletter"

    def index_for(self, event: Event) -> str:
        return self.layout.index_for(event.dataset, event.columns.timestamp)

    def _send_bulk(self, body: bytes) -> dict[str, Any]:
        """One HTTP request, no hidden retries: the client's transport would resend the whole body
        on a timeout or connection error (its max_retries x our retries), so bulk goes straight to
        a connection and the loop in _bulk is the only retry."""
        transport = getattr(self.client, "transport", None)
        if transport is None or not hasattr(transport, "get_connection"):
            return self.client.bulk(body=body, params={"refresh": self._refresh})
        connection = transport.get_connection()
        _status, _headers, data = connection.perform_request(
            "POST", "/_bulk", params={"refresh": self._refresh}, body=body, headers=_BULK_HEADERS
        )
        return orjson.loads(data)

    def _bulk(self, body: bytes) -> dict[str, Any]:
        """One bulk request, retried with backoff on 429/5xx and connection errors. A read timeout
        (the cluster may still be working on the body) is resent once only, after a backoff."""
        delay = self.initial_backoff
        timeouts = 0
        for attempt in range(self.max_retries + 1):
            try:
                return self._send_bulk(body)
            except ConnectionTimeout as exc:
                timeouts += 1
                if timeouts > TIMEOUT_RESENDS:
                    raise StoreUnavailable(
                        f"bulk request of {len(body)} bytes timed out {timeouts} times: the cluster is not keeping up "
                        f"({exc}); nothing was acknowledged as written"
                    ) from None
                error: Exception = exc
            except OSConnectionError as exc:
                error = exc
            except TransportError as exc:
                if exc.status_code == 413:
                    raise _TooLarge(len(body)) from None
                if exc.status_code not in RETRY_STATUSES:
                    raise StoreUnavailable(f"bulk request failed: HTTP {exc.status_code}: {exc.error}") from None
                error = exc
            if attempt == self.max_retries:
                raise StoreUnavailable(f"bulk request failed after {self.max_retries} retries: {error}") from None
            log.warning("bulk request failed (%s); retrying in %.1fs", error, delay)
            time.sleep(delay)
            delay = min(delay * 2, self.max_backoff)
        raise AssertionError("unreachable")

    def _chunks(self, sizes: list[int]) -> list[tuple[int, int]]:
        """[start, end) ranges of consecutive items whose bulk lines total at most max_bulk_bytes
        (an item bigger than that alone is a range of its own)."""
        ranges: list[tuple[int, int]] = []
        first, total = 0, 0
        for i, size in enumerate(sizes):
            if i > first and total + size > self.max_bulk_bytes:
                ranges.append((first, i))
                first, total = i, 0
            total += size
        if first < len(sizes):
            ranges.append((first, len(sizes)))
        return ranges

    def write(self, events: list[Event]) -> list[DeadLetter]:
        """Bulk-index events in requests of at most max_bulk_bytes; returns what was rejected. An event
        that cannot be serialised or is too large for the cluster is a dead letter, never a lost batch."""
        rejected: list[DeadLetter] = []
        kept: list[Event] = []
        lines: list[bytes] = []
        for event in events:
            line = self.encode(event)
            if isinstance(line, DeadLetter):
                rejected.append(line)
                continue
            kept.append(event)
            lines.append(line)
        return rejected + self.write_encoded(kept, lines)

    def encode(self, event: Event) -> bytes | DeadLetter:
        """The event's bulk lines (action and source), or a dead letter when it cannot be serialised.
        Needs no client: `siem load --workers` encodes in the parse processes."""
        try:
            action = orjson.dumps({"index": {"_index": self.index_for(event), "_id": event.id}})
            return action + b"\n" + (event.raw or orjson.dumps(event.doc)) + b"\n"  # raw: a fast path's JSON
        except (TypeError, ValueError, KeyError) as exc:  # orjson.JSONEncodeError is a TypeError
            return self._letter(event, f"event cannot be serialised: {exc}", b"\n" + repr(event.doc).encode())

    def write_encoded(self, events: Sequence[Event], lines: list[bytes]) -> list[DeadLetter]:
        """Index encoded events (encode); events[i] is read only when line i is rejected."""
        rejected: list[DeadLetter] = []
        for first, end in self._chunks([len(line) for line in lines]):
            rejected += self._write_range(events[first:end], lines[first:end])  # type: ignore[arg-type]
        return rejected

    def _write_range(self, events: list[Event], lines: list[bytes]) -> list[DeadLetter]:
        try:
            return self._write_items(events, lines)
        except _TooLarge as exc:
            if len(events) == 1:
                reason = (
                    f"HTTP 413: a bulk request of {exc.size} bytes holding only this event is over the cluster's limit"
                )
                return [self._letter(events[0], reason, lines[0])]
            half = len(events) // 2
            log.warning("bulk request of %d bytes refused as too large (413); splitting it", exc.size)
            return self._write_range(events[:half], lines[:half]) + self._write_range(events[half:], lines[half:])

    def _write_items(self, events: list[Event], lines: list[bytes]) -> list[DeadLetter]:
        pending = list(range(len(events)))
        rejected: list[DeadLetter] = []
        delay = self.initial_backoff
        for attempt in range(self.max_retries + 1):
            response = self._bulk(b"".join(lines[i] for i in pending))
            if not response.get("errors"):
                return rejected
            retry: list[int] = []
            for i, item in zip(pending, response["items"], strict=True):
                result = next(iter(item.values()))
                status = result.get("status", 500)
                if status < 300:
                    continue
                if status in RETRY_STATUSES and attempt < self.max_retries:
                    retry.append(i)
                    continue
                error = result.get("error") or {}
                shard_limit = shard_limit_message(result.get("_index", ""), str(error.get("reason", "")))
                if shard_limit:
                    raise ShardLimitReached(shard_limit)
                reason = f"HTTP {status} {error.get('type', '')}: {error.get('reason', '')}".strip()
                if error.get("caused_by"):
                    reason += f" (caused by {error['caused_by'].get('type')}: {error['caused_by'].get('reason')})"
                if status in RETRY_STATUSES:
                    reason += f"; still rejected after {self.max_retries} retries"
                rejected.append(self._letter(events[i], reason, lines[i]))
            if not retry:
                return rejected
            log.warning("%d documents rejected with 429/5xx; retrying in %.1fs", len(retry), delay)
            time.sleep(delay)
            delay = min(delay * 2, self.max_backoff)
            pending = retry
        return rejected

    @staticmethod
    def _letter(event: Event, reason: str, line: bytes) -> DeadLetter:
        log_ = event.doc.get("log", {})
        raw = line.split(b"\n", 1)[1][:RAW_LIMIT].decode("utf-8", errors="replace")
        return DeadLetter(
            log_.get("file", {}).get("path", ""),
            log_.get("offset", 0),
            "index",
            reason[: limits.MAX_REASON_CHARS],
            event.dataset,
            raw,
            event.id,
        )

    def write_dead_letters(self, letters: list[DeadLetter]) -> None:
        """Store dead letters in requests of at most max_bulk_bytes (a 413 splits the request)."""
        if not letters:
            return
        now = utc_now_iso()
        lines: list[bytes] = []
        for letter in letters:
            doc_id = letter_id(letter)
            doc = {
                "@timestamp": now,
                "path": letter.path,
                "offset": letter.offset,
                "stage": letter.stage,
                "reason": letter.reason[: limits.MAX_REASON_CHARS],
                "dataset": letter.dataset,
                "event_id": letter.id,
                "raw": letter.raw[:RAW_LIMIT],
            }
            action = orjson.dumps({"index": {"_index": self.deadletter_index, "_id": doc_id}})
            lines.append(action + b"\n" + orjson.dumps(doc) + b"\n")
        for first, end in self._chunks([len(line) for line in lines]):
            self._write_letter_lines(lines[first:end])

    def _write_letter_lines(self, lines: list[bytes]) -> None:
        try:
            response = self._bulk(b"".join(lines))
        except _TooLarge as exc:
            if len(lines) == 1:
                raise StoreUnavailable(
                    f"a dead letter of {exc.size} bytes is over the cluster's request limit"
                ) from None
            half = len(lines) // 2
            self._write_letter_lines(lines[:half])
            self._write_letter_lines(lines[half:])
            return
        if response.get("errors"):
            failed = [next(iter(i.values())) for i in response["items"] if next(iter(i.values()))["status"] >= 300]
            error = failed[0].get("error") or {}
            shard_limit = shard_limit_message(self.deadletter_index, str(error.get("reason", "")))
            if shard_limit:
                raise ShardLimitReached(shard_limit)
            raise StoreUnavailable(f"{len(failed)} dead letters could not be stored: {failed[0].get('error')}")

    def _query(self, query: EventQuery) -> dict[str, Any]:
        filters: list[dict[str, Any]] = []
        if query.start or query.end:
            bounds: dict[str, str] = {}
            if query.start:
                bounds["gte"] = query.start
            if query.end:
                bounds["lt"] = query.end
            filters.append({"range": {"@timestamp": bounds}})
        if query.datasets:
            filters.append({"terms": {"event.dataset": list(query.datasets)}})
        if query.ip:
            filters.append({"term": {"related.ip": query.ip}})
        if query.user:
            filters.append({"term": {"related.user": query.user}})
        return {"bool": {"filter": filters}}

    def search(self, query: EventQuery) -> list[dict[str, Any]]:
        body = {
            "query": self._query(query),
            "sort": [{"@timestamp": "asc"}, {"log.offset": "asc"}],
            "size": query.size,
        }
        response = whole_search(
            self.client, index=self.events_pattern, body=body, params={"ignore_unavailable": "true"}
        )
        return [{"_id": hit["_id"], **hit["_source"]} for hit in response["hits"]["hits"]]

    def count(self, query: EventQuery) -> int:
        response = whole(
            self.client.count(
                index=self.events_pattern, body={"query": self._query(query)}, params={"ignore_unavailable": "true"}
            )
        )
        return int(response["count"])

    def dead_letters(self, size: int = 100) -> list[dict[str, Any]]:
        response = self.client.search(
            index=self.deadletter_index,
            body={"query": {"match_all": {}}, "sort": [{"path": "asc"}, {"offset": "asc"}], "size": size},
            params={"ignore_unavailable": "true"},
        )
        return [hit["_source"] for hit in response["hits"]["hits"]]

    def refresh(self) -> None:
        self.client.indices.refresh(index=f"{self.prefix}-*", params={"ignore_unavailable": "true"})

    def close(self) -> None:
        self.client.close()
