"""AWS Lambda entry point: S3 event notifications, directly or through an SQS trigger.

Handler: ``lambda_function.handler``. Settings come from the function's environment (SIEM_*),
credentials from its execution role. With an SQS trigger and ``ReportBatchItemFailures`` enabled,
only the messages whose objects could not be stored are returned for retry; records that were
merely bad are dead-lettered and their message is done.
"""

from __future__ import annotations

import json
from typing import Any

from siem.config import load_settings
from siem.formats.routing import Router
from siem.pipeline import RunSummary, run
from siem.sinks import open_store
from siem.sources.s3 import s3_client, s3_object
from siem.sources.sqs import NotificationError, object_refs

_settings = load_settings()


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    s3 = s3_client(_settings.s3["endpoint_url"])
    store = open_store(_settings)
    router, options = Router(_settings.routes), _settings.parse_options()
    total = RunSummary()
    failures: list[dict[str, str]] = []
    try:
        for record in event.get("Records", []):
            if record.get("eventSource") == "aws:sqs":
                body, item_id = record["body"], record["messageId"]
            else:  # a direct S3 notification record
                body, item_id = json.dumps({"Records": [record]}), ""
            try:
                refs = object_refs(body)
                objects = (s3_object(s3, r.bucket, r.key, r.size) for r in refs)
                total.add(run(objects, store, router, options, batch_size=store.batch_size))
            except NotificationError as exc:
                total.errors.append(f"{item_id or 'record'}: {exc}")
            except Exception as exc:
                if not item_id:
                    raise
                total.errors.append(f"{item_id}: {type(exc).__name__}: {exc}")
                failures.append({"itemIdentifier": item_id})
        if not failures:  # visible to searches at once; skipped when the store just failed us
            store.refresh()
    finally:
        store.close()
    return {"summary": total.to_dict(), "batchItemFailures": failures}
