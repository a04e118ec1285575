"""Peak RSS and wall time of `siem load` into the embedded DuckDB store as the input grows.

Each size runs `siem load` in its own child process on a fresh data directory; the child reports
its own peak RSS (VmHWM: wait4's ru_maxrss would also count pages shared with this parent between
fork and exec). "Flat" means the peak at 300k events is about the peak at 50k. The second table
loads files of unparseable lines, so every one becomes a dead letter, and reports rows/s.

    .venv/bin/python bench/load_memory.py [--sizes 50000 300000] [--dead-letters 60000] [--memory-limit 128MB]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import tempfile
import time
from pathlib import Path

from peak_rss import run_siem

REPO = Path(__file__).resolve().parents[1]
ALB_SAMPLE = REPO / "tests" / "data" / "alb" / "test-alb.log"


def alb_lines(count: int) -> bytes:
    """`count` ALB lines: the sample lines repeated, each with its own client port so no two are equal."""
    base = [ln for ln in ALB_SAMPLE.read_bytes().splitlines() if ln.strip()]
    out = []
    for i in range(count):
        line = base[i % len(base)]
        fields = line.split(b" ", 4)
        host = fields[3].rsplit(b":", 1)[0]
        fields[3] = host + b":" + str(1024 + i % 60000).encode()
        out.append(b" ".join(fields))
    return b"\n".join(out) + b"\n"


def bad_lines(count: int) -> bytes:
    """`count` lines no ALB parser accepts (each a dead letter), distinct so none share an identity."""
    return b"".join(b"http not-a-timestamp garbage line %d\n" % i for i in range(count))


def load(path: Path, data_dir: Path, dataset: str = "aws.alb", extra_env: dict[str, str] | None = None) -> dict:
    """Run `siem load` on one file into data_dir; returns peak MB, seconds and exit code."""
    peak = data_dir.with_suffix(".peak")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIEM_")}
    env.update({"SIEM_DATA_DIR": str(data_dir), **(extra_env or {})})
    start = time.perf_counter()
    proc, peak_kb = run_siem(
        ["load", "--type", dataset, "--json", str(path)], peak, cwd=REPO, env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    try:
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise SystemExit(f"siem load failed ({proc.returncode}): {proc.stderr[-2000:]}") from None
    return {"peak_mb": peak_kb / 1024, "seconds": seconds, "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 300_000])
    parser.add_argument("--dead-letters", type=int, default=60_000, help="0 skips the dead-letter table")
    parser.add_argument("--memory-limit", help="embedded.memory_limit for the loads (default: the config default)")
    args = parser.parse_args()
    extra = {"SIEM_EMBEDDED_MEMORY_LIMIT": args.memory_limit} if args.memory_limit else {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"{'events':>8}  {'peak RSS MB':>11}  {'seconds':>8}  {'events/s':>9}")
        for size in args.sizes:
            path = work / f"alb-{size}.log.gz"
            path.write_bytes(gzip.compress(alb_lines(size), compresslevel=1))
            result = load(path, work / f"data-{size}", extra_env=extra)
            rate = size / result["seconds"]
            print(f"{size:>8}  {result['peak_mb']:>11.0f}  {result['seconds']:>8.1f}  {rate:>9.0f}")
        if args.dead_letters:
            size = args.dead_letters
            path = work / f"bad-{size}.log"
            path.write_bytes(bad_lines(size))
            result = load(path, work / "data-bad", extra_env=extra)
            print(f"\n{'dead letters':>12}  {'peak RSS MB':>11}  {'seconds':>8}  {'rows/s':>9}")
            rate = size / result["seconds"]
            print(f"{size:>12}  {result['peak_mb']:>11.0f}  {result['seconds']:>8.1f}  {rate:>9.0f}")


if __name__ == "__main__":
    main()
