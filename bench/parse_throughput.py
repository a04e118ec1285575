"""Parse + normalize throughput per dataset, single process, against a floor measured in the same run.

The floor is what any parser must pay: decompress, split into records, and one regex match (text
formats) or one orjson parse (JSON formats) per record. The ratio floor/ours says how much of the
time is our mapping; absolute events/s drift with the machine, the ratio much less.

    .venv/bin/python bench/parse_throughput.py [--records 200000] [--rounds 3] [--only aws.alb ...]

Inputs are the shared samples (../shared/samples) repeated up to --records records and gzipped.
"""

from __future__ import annotations

import argparse
import gzip
import io
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from siem import formats  # noqa: E402
from siem.formats.base import ParseOptions  # noqa: E402
from siem.formats.routing import Router  # noqa: E402
from siem.pipeline import Event, parse_object  # noqa: E402
from siem.sources.local import local_objects  # noqa: E402

SAMPLES = REPO.parent / "shared" / "samples"
_ANY_LINE = re.compile(rb"^(\S+) (\S+) (\S+)")

# dataset -> (sample files whose records are repeated, floor kind, records per line-group)
INPUTS: dict[str, tuple[list[str], str]] = {
    "aws.alb": (["alb/test-alb.log", "alb/alb_al_valid_logs.log"], "regex"),
    "aws.waf": (["waf/test-waf.log"], "json"),
    "aws.cloudtrail": (["cloudtrail/cloudtrail_log.json"], "records-json"),
    "aws.vpcflow": (["vpcflow/test-extra-samples.log"], "regex"),
    "aws.route53_resolver": (["route53_resolver/test-route53.log"], "json"),
    "aws.network_firewall": (["network_firewall/test-firewall.log"], "json"),
    "kubernetes.audit": (["k8s_audit/exec_pod.json"], "json"),
    "linux.syslog": (["syslog/test-suse-syslog.log"], "regex"),
    "linux.auth": (["auth/test-auth.log"], "regex"),
    "linux.auditd": (["auditd/test-auditd-raw.log"], "regex"),
    "nginx.access": (["nginx_access/test-access.log"], "regex"),
    "nginx.error": (["nginx_error/test-error-raw.log"], "regex"),
    "apache.access": (["apache_access/test-access-basic.log"], "regex"),
    "apache.error": (["apache_error/test-error-basic.log"], "regex"),
}


def build_input(dataset: str, records: int, workdir: Path) -> tuple[Path, int]:
    """A gzip file of about `records` records; returns its path and the record count."""
    files, kind = INPUTS[dataset]
    if kind == "records-json":
        base: list[bytes] = []
        for name in files:
            base += [orjson.dumps(r) for r in orjson.loads((SAMPLES / name).read_bytes())["Records"]]
        body = b'{"Records":[' + b",".join(base[i % len(base)] for i in range(records)) + b"]}"
        count = records
    else:
        lines: list[bytes] = []
        for name in files:
            text = (SAMPLES / name).read_bytes()
            if kind == "json" and text.lstrip().startswith(b"{") and b"\n{" not in text.strip():
                lines.append(orjson.dumps(orjson.loads(text)))  # one pretty-printed document → one line
            else:
                lines += [ln for ln in text.splitlines() if ln.strip()]
        reps = max(1, records // len(lines))
        body = b"\n".join(lines * reps) + b"\n"
        count = len(lines) * reps
    path = workdir / f"{dataset}.gz"
    path.write_bytes(gzip.compress(body, compresslevel=6))
    return path, count


def floor(path: Path, kind: str) -> int:
    n = 0
    with gzip.open(path, "rb") as raw:
        stream = io.BufferedReader(raw, 1 << 20)
        if kind == "records-json":
            n = len(orjson.loads(stream.read())["Records"])
        elif kind == "json":
            for line in stream:
                orjson.loads(line)
                n += 1
        else:
            for line in stream:
                _ANY_LINE.match(line)
                n += 1
    return n


def ours(path: Path, dataset: str) -> int:
    n = 0
    forced = formats.get(dataset)
    for obj in local_objects(path):
        for item in parse_object(obj, Router(), ParseOptions(), forced):
            if isinstance(item, Event):
                n += 1
    return n


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    n = fn()
    return time.perf_counter() - start, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="*")
    args = parser.parse_args()
    registered = formats.registry()
    datasets = [d for d in (args.only or INPUTS) if d in registered]
    print(f"{'dataset':22} {'records':>8} {'ours ev/s':>11} {'floor rec/s':>12} {'ours/floor':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in datasets:
            path, count = build_input(dataset, args.records, Path(tmp))
            kind = INPUTS[dataset][1]
            ours_t, floor_t = [], []
            events = 0
            for _ in range(args.rounds):  # interleaved, so drift hits both alike
                t, events = timed(lambda: ours(path, dataset))  # noqa: B023
                ours_t.append(t)
                t, _ = timed(lambda: floor(path, kind))  # noqa: B023
                floor_t.append(t)
            o, f = statistics.median(ours_t), statistics.median(floor_t)
            print(f"{dataset:22} {count:>8} {events / o:>11,.0f} {count / f:>12,.0f} {f / o:>10.2f}")


if __name__ == "__main__":
    main()
