"""Peak memory of parsing one large single-object CloudTrail file, against reading it whole.

A CloudTrail delivery is one JSON document (`{"Records":[...]}`) on one line; a 47 MB object is
common on busy accounts. The naive floor reads and parses it whole; we stream it. Each variant runs
in its own child process, which reports its peak RSS (VmHWM), at two input sizes, so
"flat in the input size" is visible side by side.

    .venv/bin/python bench/memory_flat.py [--mb 47]
"""

from __future__ import annotations

import argparse
import gzip
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "samples" / "cloudtrail" / "cloudtrail_log.json"

OURS = """
import sys
from siem import formats
from siem.formats.base import ParseOptions
from siem.formats.routing import Router
from siem.pipeline import Event, parse_object
from siem.sources.local import local_objects
n = sum(isinstance(i, Event) for o in local_objects(sys.argv[1])
        for i in parse_object(o, Router(), ParseOptions(), formats.get("aws.cloudtrail")))
print(n)
"""
# Peak RSS of this process image only (VmHWM): wait4's ru_maxrss would also count the parent's
# memory copied by fork before exec.
HWM = """
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print(int(line.split()[1]) / 1024)
"""
FLOOR = """
import gzip, sys, orjson
opener = gzip.open if sys.argv[1].endswith(".gz") else open
with opener(sys.argv[1], "rb") as f:
    print(len(orjson.loads(f.read())["Records"]))
"""
BASELINE = """
import sys
from siem import formats
from siem.pipeline import parse_object
print(0)
"""


def make_file(directory: Path, megabytes: float, gz: bool) -> Path:
    records = [orjson.dumps(r) for r in orjson.loads(SAMPLE.read_bytes())["Records"]]
    parts, size, i = [], 0, 0
    while size < megabytes * 1_000_000:
        parts.append(records[i % len(records)])
        size += len(parts[-1]) + 1
        i += 1
    body = b'{"Records":[' + b",".join(parts) + b"]}"
    path = directory / f"ct-{megabytes:g}mb.json{'.gz' if gz else ''}"
    path.write_bytes(gzip.compress(body) if gz else body)
    return path


def peak_mb(code: str, path: Path) -> tuple[float, str]:
    result = subprocess.run([sys.executable, "-c", code + HWM, str(path)], capture_output=True, text=True, cwd=REPO)
    if result.returncode != 0:
        raise SystemExit(f"child failed on {path}: {result.stderr[-2000:]}")
    out, peak = result.stdout.split()
    return float(peak), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=47.0)
    args = parser.parse_args()
    base, _ = peak_mb(BASELINE, SAMPLE)
    print(f"interpreter + imports alone: {base:.0f} MB peak RSS")
    print(f"{'input':24} {'records':>8} {'ours MB':>8} {'read-whole MB':>14} {'ours/whole':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for mb in (args.mb / 4, args.mb):
            for gz in (False, True):
                path = make_file(Path(tmp), mb, gz)
                ours, n = peak_mb(OURS, path)
                whole, m = peak_mb(FLOOR, path)
                assert n == m, (n, m)
                label = f"{mb:g} MB JSON{' (gzip)' if gz else ''}"
                print(f"{label:24} {int(n):>8} {ours:>8.0f} {whole:>14.0f} {ours / whole:>10.2f}")
                path.unlink()


if __name__ == "__main__":
    main()
