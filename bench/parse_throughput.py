"""Parse + normalize throughput per dataset, one process, against a floor measured in the same run.

The floor is what any parser must pay: decompress, split into records, and one regex match (text
formats) or one orjson parse (JSON formats) per record. The ratio ours/floor says how close to it
we are; absolute events/s drift with the machine, the ratios much less. Rounds are interleaved so
that drift (other processes on the machine) hits every column alike.

For a log type with a fast path (siem/fast/) the in-process run is timed with it ("fast") and
without it ("ref", SIEM_FAST_PATH=off), and so is the real CLI, `siem parse --type X file` with its
output to /dev/null, in a subprocess (interpreter start included, about a second).

    .venv/bin/python bench/parse_throughput.py [--records 200000] [--rounds 3] [--only aws.alb ...] [--no-cli]

Inputs: ALB, VPC flow (v2 and v5), nginx/Apache access, WAF and Route 53 Resolver are
representative generated logs (bench/representative.py, bench/representative_json.py: full records,
every field varying, 2% odd ones); the others are the shared samples (../shared/samples) repeated
up to --records records. All gzipped.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from representative import access_lines, alb_lines, vpcflow_lines  # noqa: E402
from representative_json import route53_lines, waf_lines  # noqa: E402

from siem import formats  # noqa: E402
from siem.formats.base import ParseOptions  # noqa: E402
from siem.formats.routing import Router  # noqa: E402
from siem.pipeline import Event, parse_object  # noqa: E402
from siem.sources.local import local_objects  # noqa: E402

SAMPLES = REPO.parent / "shared" / "samples"
_ANY_LINE = re.compile(rb"^(\S+) (\S+) (\S+)")

# dataset -> (sample files whose records are repeated, floor kind, records per line-group)
INPUTS: dict[str, tuple[list[str], str]] = {
    "aws.alb": (["generated"], "regex"),
    "aws.waf": (["generated"], "json"),
    "aws.cloudtrail": (["cloudtrail/cloudtrail_log.json"], "records-json"),
    "aws.vpcflow v2": (["generated"], "regex"),
    "aws.vpcflow v5": (["generated"], "regex"),
    "aws.route53_resolver": (["generated"], "json"),
    "aws.network_firewall": (["network_firewall/test-firewall.log"], "json"),
    "kubernetes.audit": (["k8s_audit/exec_pod.json"], "json"),
    "linux.syslog": (["syslog/test-suse-syslog.log"], "regex"),
    "linux.auth": (["auth/test-auth.log"], "regex"),
    "linux.auditd": (["auditd/test-auditd-raw.log"], "regex"),
    "nginx.access": (["generated"], "regex"),
    "nginx.error": (["nginx_error/test-error-raw.log"], "regex"),
    "apache.access": (["generated"], "regex"),
    "apache.error": (["apache_error/test-error-basic.log"], "regex"),
}


def build_input(dataset: str, records: int, workdir: Path) -> tuple[Path, int]:
    """A gzip file of about `records` records; returns its path and the record count."""
    files, kind = INPUTS[dataset]
    if files == ["generated"]:
        if dataset == "aws.alb":
            lines = alb_lines(records)
        elif dataset.endswith(".access"):
            lines = access_lines(records)
        elif dataset == "aws.waf":
            lines = waf_lines(records)
        elif dataset == "aws.route53_resolver":
            lines = route53_lines(records)
        else:
            lines = vpcflow_lines(records, int(dataset[-1]))
        body = b"\n".join(lines) + b"\n"
        count = len(lines)
    elif kind == "records-json":
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
    path = workdir / f"{dataset.replace(' ', '-')}.gz"
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
                with contextlib.suppress(orjson.JSONDecodeError):  # odd records: every parser pays for them
                    orjson.loads(line)
                n += 1
        else:
            for line in stream:
                _ANY_LINE.match(line)
                n += 1
    return n


def ours(path: Path, dataset: str, fast: bool = True) -> int:
    """Events of the file through parse_object in this process, with or without the fast path."""
    os.environ["SIEM_FAST_PATH"] = "on" if fast else "off"
    n = 0
    forced = formats.get(dataset)
    for obj in local_objects(path):
        for item in parse_object(obj, Router(), ParseOptions(), forced):
            if isinstance(item, Event):
                n += 1
    return n


def cli(path: Path, dataset: str, count: int, fast: bool) -> int:
    """`siem parse` in a subprocess, its events to /dev/null; returns the record count it was given."""
    env = {**os.environ, "SIEM_FAST_PATH": "on" if fast else "off"}
    command = [sys.executable, "-m", "siem.cli", "parse", "--type", dataset, str(path)]
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=REPO, check=False)
    return count


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    n = fn()
    return time.perf_counter() - start, n


def _row(rate: dict[str, float]) -> str:
    """The rates and ratios of one dataset; '-' where a column was not measured."""

    def cell(key: str, width: int) -> str:
        return f"{rate[key]:>{width},.0f}" if key in rate else f"{'-':>{width}}"

    def ratio(a: str, b: str, width: int) -> str:
        return f"{rate[a] / rate[b]:>{width}.2f}" if a in rate and b in rate else f"{'-':>{width}}"

    return (
        f"{cell('floor', 12)} {cell('fast', 10)} {cell('ref', 10)} {ratio('fast', 'ref', 8)} "
        f"{cell('cli fast', 9)} {cell('cli ref', 9)} {ratio('cli fast', 'cli ref', 7)} {ratio('cli fast', 'floor', 14)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="*", choices=sorted(INPUTS), metavar="NAME", help="inputs to run, by name")
    parser.add_argument("--no-cli", action="store_true", help="skip the `siem parse` subprocess runs")
    args = parser.parse_args()
    registered = formats.registry()
    datasets = [d for d in (args.only or INPUTS) if d.split(" ")[0] in registered]
    print(
        f"{'dataset':20} {'records':>8} {'floor rec/s':>12} {'fast ev/s':>10} {'ref ev/s':>10} {'fast/ref':>8} "
        f"{'cli fast':>9} {'cli ref':>9} {'cli f/r':>7} {'cli fast/floor':>14}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name in datasets:
            dataset = name.split(" ")[0]
            path, count = build_input(name, args.records, Path(tmp))
            kind = INPUTS[name][1]
            has_fast = hasattr(registered[dataset], "batch_mapper")
            runs: dict[str, Callable[[], int]] = {
                "floor": lambda: floor(path, kind),  # noqa: B023
                "fast": lambda: ours(path, dataset, True),  # noqa: B023
            }
            if has_fast:
                runs["ref"] = lambda: ours(path, dataset, False)  # noqa: B023
            if not args.no_cli:
                runs["cli fast"] = lambda: cli(path, dataset, count, True)  # noqa: B023
                if has_fast:
                    runs["cli ref"] = lambda: cli(path, dataset, count, False)  # noqa: B023
            times: dict[str, list[float]] = {key: [] for key in runs}
            events = count
            for _ in range(args.rounds):  # interleaved, so drift hits every column alike
                for key, fn in runs.items():
                    t, n = timed(fn)
                    times[key].append(t)
                    if key == "fast":
                        events = n
            rate = {key: (count if key == "floor" else events) / statistics.median(ts) for key, ts in times.items()}
            print(f"{name:20} {count:>8} " + _row(rate))
    os.environ.pop("SIEM_FAST_PATH", None)


if __name__ == "__main__":
    main()
