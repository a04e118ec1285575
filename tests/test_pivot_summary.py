"""The pivot's "what" column: one readable line per event, for every dataset, from real samples.

Each expected line is written by hand from the raw log line at that offset, so a summariser that
loses the DNS question, the flow's 5-tuple, the WAF rule or the API error fails here.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from siem.cli import main
from siem.pivot.summary import location, what

SAMPLES = Path(__file__).parent / "data" / "samples" / "logs"

CASES = [
    ("route53_resolver/test-route53.log", 0, "query does-not-exist.abc.com A NXDOMAIN"),
    (
        "route53_resolver/test-route53.log",
        318,
        "query 159.86.31.172.in-addr.arpa PTR NOERROR → ip-172-31-86-159.ec2.internal",
    ),
    ("vpcflow/test-extra-samples.log", 338, "tcp 89.160.20.156:20641 → 89.160.20.156:22 4249B 20pkt ACCEPT"),
    (
        "vpcflow/test-extra-samples.log",
        0,
        "tcp [2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6]:34892 → [2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6]:22"
        " 8855B 54pkt ACCEPT",
    ),
    ("waf/test-waf.log", 0, "BLOCK rule=STMTest_SQLi_XSS GET localhost /foo"),
    ("alb/test-alb.log", 0, "GET http://www.example.com:80/ 200 366B target=200"),
    ("alb/test-alb.log", 2142, "connection 192.168.131.39:36280 → :443 TLSv1.2 verify=Success"),
    ("cloudtrail/test-update-group-json.log", 0, "iam:UpdateGroup (success) groupName=TEST-GROUP"),
    ("cloudtrail/test-console-login-json.log", 1, "signin:ConsoleLogin (failure) error=Failed authentication"),
    ("cloudtrail/test-create-user-json.log", 0, "iam:CreateUser (success) user=Bob"),
    (
        "cloudtrail/test-delete-bucket-json.log",
        0,
        "s3:DeleteBucket (success) arn:aws:s3:::my-test-bucket-cross-account",
    ),
    ("k8s_audit/exec_pod.json", 0, "create pods/exec nginx-deployment-7998647bdf-phvq7 ns=default 101 allow cmd=bash"),
    ("auth/test-auth.log", 324, "ssh_login (failure) method=password user=root from 89.160.20.156"),
    (
        "network_firewall/test-firewall.log",
        0,
        "alert tcp 81.2.69.143:51254 → 216.160.83.57:80 blocked rule='Deny all other TCP traffic' GET /",
    ),
    ("nginx_error/test-error-raw.log", 0, None),  # checked below: level + message
    ("syslog/test-suse-syslog.log", 0, "systemd: Stopped target Basic System."),
]


@cache
def parsed(relative: str) -> dict[int, dict]:
    """The ECS documents `siem parse` makes of a bundled sample, by offset."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(["parse", str(SAMPLES / relative)]) in (0, 1)
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    return {d["log"]["offset"]: d for d in docs}


@pytest.mark.parametrize(("relative", "offset", "expected"), [c for c in CASES if c[2]])
def test_what_says_what_happened(relative: str, offset: int, expected: str) -> None:
    assert what(parsed(relative)[offset]) == expected


def test_error_log_line_keeps_level_and_message_on_one_line() -> None:
    line = what(parsed("nginx_error/test-error-raw.log")[0])
    assert line.startswith('[error] open() "/usr/local/Cellar/nginx/1.10.2_1/html/favicon.ico" failed')
    assert "\n" not in line


def test_every_sample_event_of_every_dataset_has_a_summary_and_a_location() -> None:
    empty = []
    for folder in sorted(p for p in SAMPLES.iterdir() if p.is_dir()):
        for file in sorted(folder.iterdir()):
            for offset, doc in parsed(str(file.relative_to(SAMPLES))).items():
                if not what(doc).strip() or not location(doc).endswith(f":{offset}"):
                    empty.append((file.name, offset))
    assert empty == []
