"""What `normalize.finalize` adds to every event of one object, as JSON bytes a fast path splices in."""

from __future__ import annotations

from typing import Any

import orjson

from siem.normalize import ObjectContext


def envelope(ctx: ObjectContext, dataset: str) -> tuple[bytes, bytes, bytes]:
    """What `finalize` adds that is the same for every event of the object, as JSON: the event's
    members (closing it), the top-level members, and the log member up to its offset's value."""
    top: dict[str, Any] = {"data_stream": {"dataset": dataset}}
    if ctx.account_id or ctx.region:
        cloud: dict[str, Any] = {"provider": "aws"}
        if ctx.account_id:
            cloud["account"] = {"id": ctx.account_id}
        if ctx.region:
            cloud["region"] = ctx.region
        top["cloud"] = cloud
    event = orjson.dumps({"dataset": dataset, "ingested": ctx.ingested})
    log = b',"log":{"file":{"path":' + orjson.dumps(ctx.path) + b'},"offset":'
    return b"," + event[1:-1] + b"}", b"," + orjson.dumps(top)[1:-1], log
