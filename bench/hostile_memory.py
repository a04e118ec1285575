"""Peak RSS of `siem parse` on a gzip bomb, for every log type (run on demand, not in the suite).

For each log type: one valid-looking line, then a single line of 1 GiB of zeros (about 1 MB
gzipped), then the line again; `siem parse --type <type>` runs in a child process and its peak RSS
is the child's own VmHWM. Expect every type well under 300 MB: lines are capped at
limits.MAX_RECORD_BYTES (skipped in bounded memory, dead-lettered), documents at
MAX_DOCUMENT_BYTES, and past 512 MiB inflated an object over MAX_INFLATE_RATIO fails (dead letter).

    .venv/bin/python bench/hostile_memory.py [--gib 1] [--type nginx.access ...]
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import tempfile
import time
import zlib
from pathlib import Path

import orjson
from peak_rss import run_siem

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from siem import formats  # noqa: E402

LINE = b'203.0.113.9 - - [10/Oct/2023:13:55:36 +0000] "GET / HTTP/1.1" 200 12 "-" "curl/8.0"'
RECORD = {
    "fluentd": b'{"time":"2024-03-01T10:00:00Z","tag":"app","level":"info"}',
    "aws.cloudwatch_logs": orjson.dumps(
        {"messageType": "DATA_MESSAGE", "logGroup": "g", "logEvents": [{"id": "1", "timestamp": 1, "message": "m"}]}
    ),
}


def bomb(size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\0" * (1 << 20)
    out = [compressor.compress(block) for _ in range(size >> 20)]
    out.append(compressor.flush())
    return b"".join(out)


def measure(path: Path, dataset: str) -> tuple[int, float, int, str]:
    """(peak RSS MB, seconds, exit code, first dead-letter reason) of one `siem parse` child."""
    dead, peak = path.with_suffix(".dead"), path.with_suffix(".peak")
    started = time.monotonic()
    with open(os.devnull, "wb") as devnull:
        argv = ["parse", "--type", dataset, "--dead-letter", str(dead), str(path)]
        proc, peak_kb = run_siem(argv, peak, cwd=REPO, stdout=devnull, stderr=devnull)
    elapsed = time.monotonic() - started
    reasons = [orjson.loads(x)["reason"] for x in dead.read_bytes().splitlines()] if dead.exists() else []
    return peak_kb // 1024, elapsed, proc.returncode, (reasons or ["-"])[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0, help="inflated size of the bomb line (GiB)")
    parser.add_argument("--type", action="append", help="only these log types")
    args = parser.parse_args()
    size = int(args.gib * (1 << 30))
    compressed = bomb(size)
    print(f"bomb: {size >> 20} MiB of zeros in one line, {len(compressed) >> 10} KiB gzipped")
    print(f"{'log type':24} {'peak RSS':>9} {'seconds':>8} {'exit':>5}  first dead letter")
    with tempfile.TemporaryDirectory() as directory:
        for dataset in args.type or formats.registry():
            record = RECORD.get(dataset, LINE)
            path = Path(directory) / f"{dataset}.log.gz"
            path.write_bytes(gzip.compress(record + b"\n") + compressed + gzip.compress(b"\n" + record + b"\n"))
            rss, elapsed, code, reason = measure(path, dataset)
            print(f"{dataset:24} {rss:>6} MB {elapsed:>8.1f} {code:>5}  {reason[:90]}")
            path.unlink()


if __name__ == "__main__":
    main()
