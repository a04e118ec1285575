"""The AWS Lambda entry point, invoked as Lambda would: S3 trigger and SQS trigger, S3 over HTTP, real OpenSearch."""

from __future__ import annotations

import gzip
import importlib
import json
import sys

from oracle import REPO

ALB = (REPO / "tests/data/alb/test-alb.log").read_bytes()
KEY = "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2024/05/01/lb.log.gz"


def _handler(monkeypatch, env: dict[str, str]):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.syspath_prepend(str(REPO / "loader"))
    sys.modules.pop("lambda_function", None)  # settings are read at cold start, as in Lambda
    return importlib.import_module("lambda_function").handler


def _s3_record(bucket: str, key: str) -> dict:
    return {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key}},
    }


def test_sqs_trigger_loads_objects_and_reports_only_store_failures(
    monkeypatch, aws_endpoint, s3, bucket, opensearch_url, opensearch_client, index_prefix
) -> None:
    s3.put_object(Bucket=bucket, Key=KEY, Body=gzip.compress(ALB))
    handler = _handler(
        monkeypatch,
        {
            "AWS_ENDPOINT_URL": aws_endpoint,
            "SIEM_OPENSEARCH_URL": opensearch_url,
            "SIEM_OPENSEARCH_INDEX_PREFIX": index_prefix,
        },
    )
    from siem.templates import install_templates

    install_templates(opensearch_client, index_prefix)
    event = {
        "Records": [
            {
                "eventSource": "aws:sqs",
                "messageId": "m-good",
                "body": json.dumps({"Records": [_s3_record(bucket, KEY)]}),
            },
            {"eventSource": "aws:sqs", "messageId": "m-bogus", "body": "not a notification"},
            {
                "eventSource": "aws:sqs",
                "messageId": "m-missing",
                "body": json.dumps({"Records": [_s3_record(bucket, "gone.log")]}),
            },
        ]
    }
    result = handler(event, None)
    assert result["summary"]["written"] == 10
    # a bogus message is reported, not retried; a missing object is a failed object, dead-lettered, not retried
    assert result["batchItemFailures"] == []
    assert any("m-bogus" in e for e in result["summary"]["errors"])
    assert result["summary"]["objects_failed"] == 1
    count = opensearch_client.count(index=f"{index_prefix}-events-*")["count"]
    assert count == 10


def test_sqs_trigger_returns_failures_when_store_is_down(monkeypatch, aws_endpoint, s3, bucket) -> None:
    s3.put_object(Bucket=bucket, Key=KEY, Body=gzip.compress(ALB))
    handler = _handler(
        monkeypatch,
        {
            "AWS_ENDPOINT_URL": aws_endpoint,
            "SIEM_OPENSEARCH_URL": "http://127.0.0.1:9",
            "SIEM_OPENSEARCH_MAX_RETRIES": "0",
        },
    )
    body = json.dumps({"Records": [_s3_record(bucket, KEY)]})
    result = handler({"Records": [{"eventSource": "aws:sqs", "messageId": "m1", "body": body}]}, None)
    assert result["batchItemFailures"] == [{"itemIdentifier": "m1"}]
