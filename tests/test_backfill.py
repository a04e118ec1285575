"""`siem load s3://bucket/prefix --since T --until T`: the listing walks date folders and never lists
one outside the range; a folder of more than 1,000 objects is paged (moto's S3 over HTTP)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from oracle import REPO

from siem.cli import main
from siem.sources.s3 import s3_objects
from siem.sources.selection import Selection, key_date

ALB_LINE = (REPO / "tests/data/alb/test-alb.log").read_text().splitlines()[0]
ALB_TIME = "2018-07-02T22:23:00.186641Z"
ELB = "AWSLogs/123456789012/elasticloadbalancing/us-east-1"


def alb(*times: str) -> bytes:
    return "".join(ALB_LINE.replace(ALB_TIME, t) + "\n" for t in times).encode()


# key → the event times in it. Day folders (ALB), Firehose hour folders and Hive-style folders.
LAYOUT = {
    f"{ELB}/2023/12/31/a.log": ("2023-12-31T12:00:00Z",),
    f"{ELB}/2024/01/01/a.log": ("2024-01-01T10:00:00Z",),
    # an object of the first day in range holds an event from just before it: loaded whole (documented)
    f"{ELB}/2024/01/02/a.log": ("2024-01-01T23:59:00Z", "2024-01-02T00:05:00Z"),
    f"{ELB}/2024/01/02/b.log": ("2024-01-02T11:00:00Z",),
    f"{ELB}/2024/01/03/a.log": ("2024-01-03T01:00:00Z",),
    f"{ELB}/2025/06/01/a.log": ("2025-06-01T01:00:00Z",),
    "waf/2024/01/02/05/a.log": ("2024-01-02T05:10:00Z",),
    "waf/2024/01/02/06/a.log": ("2024-01-02T06:10:00Z",),
    "waf/2024/01/02/07/a.log": ("2024-01-02T07:10:00Z",),
    "hive/year=2024/month=01/day=02/hour=06/a.log": ("2024-01-02T06:30:00Z",),
    "hive/year=2024/month=02/day=01/hour=00/a.log": ("2024-02-01T00:30:00Z",),
}
SINCE, UNTIL = "2024-01-02T06:00:00Z", "2024-01-02T07:00:00Z"
# overlapping [06:00, 07:00): the two day folders of 2024-01-02 and the 06 hour folders, nothing else
IN_RANGE = {
    f"{ELB}/2024/01/02/a.log",
    f"{ELB}/2024/01/02/b.log",
    "waf/2024/01/02/06/a.log",
    "hive/year=2024/month=01/day=02/hour=06/a.log",
}


@pytest.fixture
def layout(s3, bucket) -> str:
    for key, times in LAYOUT.items():
        s3.put_object(Bucket=bucket, Key=key, Body=alb(*times))
    return bucket


def _listings(s3) -> list[dict]:
    """Every ListObjectsV2 request the client sends (an observer on the real client, not a mock)."""
    seen: list[dict] = []
    s3.meta.events.register("before-call.s3.ListObjectsV2", lambda params, **_: seen.append(params["query_string"]))
    return seen


def test_key_dates_of_aws_firehose_fluentd_and_hive_layouts() -> None:
    assert key_date(f"{ELB}/2024/05/01") == (2024, 5, 1)
    assert key_date("AWSLogs/123456789012/WAFLogs/us-east-1/acl/2024/05/01/13/05") == (2024, 5, 1, 13)
    assert key_date("fluentd/app/2024/02/29") == (2024, 2, 29)
    assert key_date("AWSLogs/aws-account-id=1/year=2024/month=05/day=01/hour=23") == (2024, 5, 1, 23)
    assert key_date("exports/dt=2024-05-01") == (2024, 5, 1)
    assert key_date("backups/2023/AWSLogs/123456789012/CloudTrail/us-east-1/2024/05/01") == (2024, 5, 1)
    assert key_date("logs/2023/02/30") == (2023, 2)  # no 30 February: the day is not a date
    assert key_date("AWSLogs/123456789012/CloudTrail/us-east-1") == ()


def test_since_until_never_lists_a_folder_outside_the_range(layout, s3) -> None:
    selection = Selection(parse(SINCE), parse(UNTIL))
    requests = _listings(s3)
    keys = {obj.path.removeprefix(f"s3://{layout}/") for obj in s3_objects(f"s3://{layout}/", s3, selection)}
    assert keys == IN_RANGE
    asked = [r["prefix"] for r in requests]
    assert f"{ELB}/2024/01/" in asked and "waf/2024/01/02/" in asked  # the walk did go down to the range
    for pruned in ("/2023/", "/2025/", "/2024/01/01/", "/2024/01/03/", "02/05/", "02/07/", "month=02"):
        assert not any(pruned in prefix for prefix in asked), (pruned, asked)


def test_a_folder_of_more_than_1000_objects_is_paged(s3, bucket) -> None:
    """The 1,003 keys are put straight into the moto server's backend (it runs in this process): 1,003
    PUTs over HTTP take 20 s on this machine. Every listing still goes over HTTP."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    day = f"{ELB}/2024/03/04/"
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["global"]
    for i in range(1003):
        backend.put_object(bucket, f"{day}{i:05d}.log", b"x")
    s3.put_object(Bucket=bucket, Key=f"{ELB}/2024/03/05/other.log", Body=b"x")
    selection = Selection(parse("2024-03-04T00:00:00Z"), parse("2024-03-05T00:00:00Z"))
    requests = _listings(s3)
    keys = [obj.path for obj in s3_objects(f"s3://{bucket}/AWSLogs/", s3, selection)]
    assert len(keys) == 1003 and keys[0].endswith("00000.log") and keys[-1].endswith("01002.log")
    assert any("continuation-token" in r for r in requests)  # a second page was asked for


def test_load_since_until_loads_whole_objects_of_the_range(layout, aws_endpoint, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.delenv("SIEM_OPENSEARCH_URL", raising=False)
    monkeypatch.setenv("SIEM_DATA_DIR", str(tmp_path / "data"))
    code = main(
        ["load", f"s3://{layout}/", "--since", SINCE, "--until", UNTIL, "--endpoint-url", aws_endpoint, "--json"]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    # 4 objects, 5 events: the event at 2024-01-01T23:59 inside a 2024-01-02 object is kept
    assert (summary["objects"], summary["events"], summary["written"]) == (4, 5, 5)


def test_a_range_that_selects_nothing_is_an_error(layout, aws_endpoint, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.delenv("SIEM_OPENSEARCH_URL", raising=False)
    monkeypatch.setenv("SIEM_DATA_DIR", str(tmp_path / "data"))
    argv = ["load", f"s3://{layout}/waf/", "--since", "2030-01-01", "--endpoint-url", aws_endpoint]
    assert main(argv) == 2
    assert "no objects under this prefix match --since 2030-01-01T00:00:00+00:00" in capsys.readouterr().err
    assert main(["load", f"s3://{layout}/", "--since", "2024-02-01", "--until", "2024-01-01"]) == 2
    assert "is not before --until" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def parse(value: str):
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00"))
