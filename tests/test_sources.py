"""Where objects come from: AWS key layouts give account and region."""

from __future__ import annotations

import pytest

from siem.sources import aws_key_context


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (
            "AWSLogs/123456789012/elasticloadbalancing/ap-northeast-1/2024/01/02/x.log.gz",
            ("123456789012", "ap-northeast-1"),
        ),
        (
            "prefix/AWSLogs/o-abc123/123456789012/CloudTrail/us-gov-west-1/2024/01/02/x.json.gz",
            ("123456789012", "us-gov-west-1"),
        ),
        ("AWSLogs/123456789012/network-firewall/alert/eu-west-1/fw/2024/01/02/x.log.gz", ("123456789012", "eu-west-1")),
        ("AWSLogs/123456789012/WAFLogs/cloudfront/acl/2024/01/02/x.log.gz", ("123456789012", None)),
        ("nginx/web-1/2024/01/02/x.gz", (None, None)),
    ],
)
def test_aws_key_context(key: str, expected: tuple[str | None, str | None]) -> None:
    assert aws_key_context(key) == expected
