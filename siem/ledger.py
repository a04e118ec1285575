"""The ledger of processed objects: which object (path and version) was loaded, with what result.

A backfill of thousands of objects that is killed, interrupted or crashes resumes where it stopped:
`siem load` skips an object the ledger records as done with the same version (S3 ETag; size and
modification time of a local file), and reloads one that changed or failed. An object is recorded
only after everything it gave (events and dead letters) is in the store, so a kill at any point
leaves at worst objects loaded but not recorded; they are loaded again, and deterministic document
IDs make that an overwrite, never a duplicate. ``--force`` loads everything again.

The ledger lives in the store itself (an index ``<prefix>-ledger`` in OpenSearch, a ``ledger``
table in the embedded store), so it is backed up, shared by every loader and worker of that store,
and removed with it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any, Protocol

from siem.normalize import utc_now_iso
from siem.pipeline import ObjectOutcome
from siem.sources import SourceObject

log = logging.getLogger("siem.ledger")

LOOKUP_BATCH = 500  # objects whose ledger entries are fetched in one request while listing


@dataclass(frozen=True, slots=True)
class Entry:
    version: str | None
    status: str  # done | failed


class Ledger(Protocol):
    def lookup(self, identities: list[str]) -> dict[str, Entry]:
        """The recorded entries of these objects (absent: never recorded)."""
        ...

    def record(self, outcomes: list[ObjectOutcome]) -> None: ...


def row(outcome: ObjectOutcome) -> dict[str, Any]:
    obj = outcome.obj
    return {
        "path": obj.identity,
        "version": obj.version,
        "size": obj.size,
        "events": outcome.events,
        "dead_letters": outcome.dead_letters,
        "status": "failed" if outcome.failed else "done",
        "finished": utc_now_iso(),
    }


_OPENSEARCH_MAPPING = {
    "dynamic": "strict",
    "properties": {
        "path": {"type": "keyword"},
        "version": {"type": "keyword"},
        "size": {"type": "long"},
        "events": {"type": "long"},
        "dead_letters": {"type": "long"},
        "status": {"type": "keyword"},
        "finished": {"type": "date"},
    },
}


class OpenSearchLedger:
    """Index ``<prefix>-ledger``, one document per object (its id a hash of the path: keys run to 1,024
    bytes, ids to 512), read back with mget, which sees a write at once without a refresh. The index is
    created here with its mapping, so it never depends on templates being installed."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.index = f"{prefix}-ledger"
        self._ready = False

    @staticmethod
    def doc_id(identity: str) -> str:
        return hashlib.blake2b(identity.encode(), digest_size=20).hexdigest()

    def lookup(self, identities: list[str]) -> dict[str, Entry]:
        if not identities or not self.client.indices.exists(index=self.index):
            return {}
        response = self.client.mget(index=self.index, body={"ids": [self.doc_id(i) for i in identities]})
        found = {}
        for doc in response["docs"]:
            if doc.get("found"):
                source = doc["_source"]
                found[source["path"]] = Entry(source.get("version"), source["status"])
        return found

    def record(self, outcomes: list[ObjectOutcome]) -> None:
        if not self._ready:
            if not self.client.indices.exists(index=self.index):
                body = {
                    "settings": {"index": {"number_of_shards": 1, "auto_expand_replicas": "0-1"}},
                    "mappings": _OPENSEARCH_MAPPING,
                }
                # a 400 is another loader having created it meanwhile
                self.client.indices.create(index=self.index, body=body, params={"ignore": 400})
            self._ready = True
        lines = []
        for outcome in outcomes:
            doc = row(outcome)
            lines.append({"index": {"_index": self.index, "_id": self.doc_id(doc["path"])}})
            lines.append(doc)
        response = self.client.bulk(body=lines)
        if response.get("errors"):
            failed = [i["index"] for i in response["items"] if i["index"].get("status", 500) >= 300]
            raise RuntimeError(f"{len(failed)} ledger entries not stored: {failed[0].get('error')}")


class EmbeddedLedger:
    """Table ``ledger`` in the embedded store's DuckDB file: looked up on the store's connection (the
    parsing thread), recorded on its writing cursor (the thread that wrote the objects' events)."""

    def __init__(self, db: Any, writer: Any) -> None:
        self.db, self.writer = db, writer
        self.writer.execute(
            "CREATE TABLE IF NOT EXISTS ledger (path VARCHAR PRIMARY KEY, version VARCHAR, size BIGINT,"
            " events BIGINT, dead_letters BIGINT, status VARCHAR, finished TIMESTAMPTZ)"
        )

    def lookup(self, identities: list[str]) -> dict[str, Entry]:
        if not identities:
            return {}
        rows = self.db.execute(
            "SELECT path, version, status FROM ledger WHERE list_contains(?, path)", [identities]
        ).fetchall()
        return {path: Entry(version, status) for path, version, status in rows}

    def record(self, outcomes: list[ObjectOutcome]) -> None:
        columns = ("path", "version", "size", "events", "dead_letters", "status", "finished")
        self.writer.executemany(
            "INSERT OR REPLACE INTO ledger VALUES (?, ?, ?, ?, ?, ?, CAST(? AS TIMESTAMPTZ))",
            [tuple(row(o)[c] for c in columns) for o in outcomes],
        )


def ledger_for(store: Any) -> Ledger | None:
    """The ledger of a store (None for a sink that keeps nothing, such as `siem parse`)."""
    if getattr(store, "name", None) == "opensearch":
        return OpenSearchLedger(store.client, store.prefix)
    if getattr(store, "name", None) == "embedded":
        return EmbeddedLedger(store.db, store.writer)
    return None


class Recorder:
    """The pipeline's ``committed`` hook: records finished objects and logs each one at INFO (`-v`).
    A ledger that cannot be written is a warning, not a failed load: the events are in the store, and
    the objects are only read again next time."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def __call__(self, outcomes: list[ObjectOutcome]) -> None:
        try:
            self.ledger.record(outcomes)
        except Exception as exc:
            log.warning("could not record %d finished objects in the ledger: %s", len(outcomes), exc)
            return
        for o in outcomes:
            log.info(
                "object done path=%s events=%d dead_letters=%d status=%s",
                o.obj.path,
                o.events,
                o.dead_letters,
                "failed" if o.failed else "done",
            )


class SkipFinished:
    """Passes on the objects to load, leaving out those the ledger has as done at the same version;
    ``skipped`` counts them. Looked up in batches as the listing goes, so memory does not grow with
    the number of objects."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.skipped = 0

    def __call__(self, objects: Iterable[SourceObject]) -> Iterator[SourceObject]:
        it = iter(objects)
        while batch := list(islice(it, LOOKUP_BATCH)):
            entries = self.ledger.lookup([o.identity for o in batch if o.version])
            for obj in batch:
                entry = entries.get(obj.identity)
                if entry and entry.status == "done" and obj.version and entry.version == obj.version:
                    self.skipped += 1
                    continue
                yield obj
