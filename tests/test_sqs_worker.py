"""S3 event notifications through SQS (moto's server over HTTP) → the worker → real OpenSearch."""

from __future__ import annotations

import gzip
import json
import uuid

import pytest
from oracle import REPO

from siem.cli import main
from siem.sources.sqs import NotificationError, object_refs

ALB = (REPO / "tests/data/alb/test-alb.log").read_bytes()
KEY = "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2024/05/01/my+lb file.log.gz"


def test_notification_shapes() -> None:
    direct = {
        "Records": [
            {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": {"key": "a+b%2Bc", "size": 3}}}
        ]
    }
    assert [(r.bucket, r.key) for r in object_refs(json.dumps(direct))] == [("b", "a b+c")]
    sns = {"Type": "Notification", "Message": json.dumps(direct)}
    assert object_refs(json.dumps(sns))[0].key == "a b+c"
    bridge = {"source": "aws.s3", "detail": {"bucket": {"name": "b"}, "object": {"key": "k", "size": 1}}}
    assert object_refs(json.dumps(bridge))[0].key == "k"
    assert object_refs(json.dumps({"Event": "s3:TestEvent"})) == []
    removed = {
        "Records": [{"eventName": "ObjectRemoved:Delete", "s3": {"bucket": {"name": "b"}, "object": {"key": "k"}}}]
    }
    assert object_refs(json.dumps(removed)) == []
    for bad in ("not json", "[1]", json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]})):
        with pytest.raises(NotificationError):
            object_refs(bad)


@pytest.fixture
def queue(aws_endpoint, s3, bucket):
    import boto3

    sqs = boto3.client("sqs", endpoint_url=aws_endpoint, region_name="us-east-1")
    url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]},
    )
    return sqs, url


def test_worker_loads_notified_objects_and_deletes_messages(
    queue, s3, bucket, aws_endpoint, opensearch_url, index_prefix, monkeypatch, capsys
) -> None:
    sqs, url = queue
    s3.put_object(Bucket=bucket, Key=KEY, Body=gzip.compress(ALB))
    sqs.send_message(QueueUrl=url, MessageBody="this is not a notification")
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint)
    monkeypatch.setenv("SIEM_OPENSEARCH_URL", opensearch_url)
    monkeypatch.setenv("SIEM_OPENSEARCH_INDEX_PREFIX", index_prefix)
    monkeypatch.setenv("SIEM_SQS_WAIT_SECONDS", "1")
    code = main(["worker", "--queue-url", url, "--once", "--json"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["written"] == 10
    assert summary["dead_lettered"] == 1  # the bogus message, kept with its reason
    assert code == 1
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert attrs == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
    code = main(["pivot", "--ip", "67.43.156.20", "--format", "json"])
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert doc["log"]["file"]["path"] == f"s3://{bucket}/{KEY}"


def test_message_stays_on_queue_when_store_is_down(queue, s3, bucket, aws_endpoint, monkeypatch, capsys) -> None:
    sqs, url = queue
    s3.put_object(Bucket=bucket, Key=KEY, Body=gzip.compress(ALB))
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint)
    monkeypatch.setenv("SIEM_OPENSEARCH_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("SIEM_OPENSEARCH_MAX_RETRIES", "0")
    monkeypatch.setenv("SIEM_SQS_WAIT_SECONDS", "1")
    before = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert int(before["ApproximateNumberOfMessages"]) >= 1  # the ObjectCreated notification (and moto's test event)
    code = main(["worker", "--queue-url", url, "--once"])
    assert code == 2  # cannot even install templates: a clear error, nothing consumed
    assert "OpenSearch error" in capsys.readouterr().err
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert attrs == before
