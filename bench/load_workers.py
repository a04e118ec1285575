"""`siem load --workers N`: events/s and peak RSS against one worker, same input, interleaved rounds.

Input (representative, not the cheap lines of the samples): many gzip objects under AWS delivery keys,
routed by key as a real backfill is — ALB full HTTP lines (the first line of tests/data/alb/test-alb.log
with varied client IPs, ports, paths, agents and times), CloudTrail in the compact layout AWS writes
(the records of tests/data/samples/logs/cloudtrail/cloudtrail_log.json with varied source IPs, users,
times and ids) and VPC flow v2 lines (varied addresses, ports, times). Each run is the real CLI
(`python -m siem.cli load --json`) in a child on a fresh embedded store (and, with --url or
SIEM_OPENSEARCH_URL, on a fresh index prefix of that cluster, deleted after). Peak RSS is the largest
sum of the RSS of `siem` and its parse processes, sampled from /proc every 50 ms; CPU seconds are
theirs (user + system) per 1,000 events: what parallelism costs in total, whatever else runs.

    .venv/bin/python bench/load_workers.py [--workers 1 2 4] [--rounds 2] [--scale 1.0] [--url URL]

The targets of issue 9: `--workers 2` on 2 cores >= 1.7x one worker; one worker into the embedded
store >= 60% of `siem parse`'s speed on the same input (measured in each round) with peak RSS < 300 MB.
"ceiling" is what N pure-Python processes gain over one on the same machine at the same moment (N
processes spinning a fixed loop): on a machine shared with other work, or whose cores are SMT
siblings, it is well under N, and the loader's ratio is to be read against it; the load average
printed says how busy the machine was.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
ALB = (REPO / "tests/data/alb/test-alb.log").read_text().splitlines()[0]
TRAIL = orjson.loads((REPO / "tests/data/samples/logs/cloudtrail/cloudtrail_log.json").read_bytes())["Records"]
ACCOUNT = "123456789012"
AGENTS = ("curl/7.46.0", "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/126.0", "python-requests/2.31")
PATHS = ("/", "/login", "/api/v1/items?page=2", "/static/app.js", "/admin/config.php")


def _ip(rng: random.Random) -> str:
    return f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def _time(rng: random.Random) -> str:
    return f"2024-05-01T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"


def alb_object(rng: random.Random, lines: int) -> bytes:
    fields = ALB.split(" ")
    out = []
    for _ in range(lines):
        stamp = _time(rng)
        fields[1] = f"{stamp}.{rng.randint(0, 999999):06d}Z"
        fields[3] = f"{_ip(rng)}:{rng.randint(1024, 65535)}"
        fields[4] = f"10.0.{rng.randint(0, 3)}.{rng.randint(1, 254)}:80"
        line = " ".join(fields).replace("http://www.example.com:80/", "http://www.example.com:80" + rng.choice(PATHS))
        line = line.replace("curl/7.46.0", rng.choice(AGENTS)).replace("2018-07-02T22:22:48.364000Z", stamp + ".0Z")
        out.append(line)
    return gzip.compress(("\n".join(out) + "\n").encode(), compresslevel=1)


def trail_object(rng: random.Random, records: int) -> bytes:
    out = []
    for i in range(records):
        record = dict(TRAIL[i % len(TRAIL)])
        record["sourceIPAddress"] = _ip(rng)
        record["eventTime"] = _time(rng) + "Z"
        record["eventID"] = str(uuid.UUID(int=rng.getrandbits(128)))
        identity = dict(record.get("userIdentity") or {})
        if identity.get("userName"):
            identity["userName"] = f"user{rng.randint(1, 500)}"
        record["userIdentity"] = identity
        out.append(record)
    return gzip.compress(orjson.dumps({"Records": out}), compresslevel=1)


def vpc_object(rng: random.Random, lines: int) -> bytes:
    out = [
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action"
        " log-status"
    ]
    for _ in range(lines):
        start = 1714521600 + rng.randint(0, 86000)
        action = rng.choice(("ACCEPT", "ACCEPT", "REJECT"))
        out.append(
            f"2 {ACCOUNT} eni-0{rng.getrandbits(64):016x} {_ip(rng)} 10.0.{rng.randint(0, 9)}.{rng.randint(1, 254)} "
            f"{rng.randint(1024, 65535)} {rng.choice((22, 80, 443, 3389))} 6 {rng.randint(1, 50)} "
            f"{rng.randint(40, 90000)} {start} {start + 60} {action} OK"
        )
    return gzip.compress(("\n".join(out) + "\n").encode(), compresslevel=1)


def build(root: Path, scale: float) -> int:
    """The input tree; returns the number of events it holds."""
    rng = random.Random(9)
    day = "2024/05/01"
    kinds = (
        ("elasticloadbalancing", "log.gz", alb_object, 12, int(5000 * scale)),
        ("CloudTrail", "json.gz", trail_object, 12, int(2000 * scale)),
        ("vpcflowlogs", "log.gz", vpc_object, 12, int(5000 * scale)),
    )
    events = 0
    for service, suffix, make, objects, size in kinds:
        folder = root / "AWSLogs" / ACCOUNT / service / "us-east-1" / day
        folder.mkdir(parents=True)
        for i in range(objects):
            (folder / f"{ACCOUNT}_{service}_us-east-1_20240501T{i:02d}00Z_{i:04x}.{suffix}").write_bytes(
                make(rng, size)
            )
            events += size
    return events


def _tree_rss(pid: int) -> int:
    """KiB resident in pid and its descendants."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(next(x for x in status.splitlines() if x.startswith("VmRSS:")).split()[1])
            for task in Path(f"/proc/{current}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration):
            continue
    return total


SPIN = "x = 0\nfor i in range(8_000_000):\n    x += i\n"


def ceiling(processes: int) -> float:
    """How much faster `processes` CPU-bound Python processes get through the same work per process than
    one does, right now: the most `--workers N` can gain on this machine (SMT siblings and other load
    make it less than N)."""

    def timed(n: int) -> float:
        start = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(n)]
        for proc in procs:
            proc.wait()
        return time.perf_counter() - start

    return processes * timed(1) / timed(processes)


def run_load(source: Path, workers: int, env: dict[str, str]) -> dict:
    argv = [sys.executable, "-m", "siem.cli", "load", str(source), "--json", "--workers", str(workers)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # siem and its parse processes, once reaped
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    sampler.join()
    try:
        summary = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise SystemExit(f"siem load failed ({proc.returncode}): {err[-2000:]}") from None
    return {"seconds": seconds, "cpu": cpu, "events": summary["written"], "peak_mb": peak[0] / 1024, "summary": summary}


def run_parse(source: Path, env: dict[str, str]) -> float:
    """Seconds of `siem parse --json` over the same tree (events to /dev/null): the speed the issue's
    "embedded load >= 60% of parse" target is read against."""
    argv = [sys.executable, "-m", "siem.cli", "parse", str(source), "--json"]
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"siem parse failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cores = os.cpu_count() or 1
    parser.add_argument("--workers", type=int, nargs="+", default=sorted({1, 2, cores}))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--scale", type=float, default=1.0, help="objects' size factor (1.0: 144k events)")
    parser.add_argument("--url", default=os.environ.get("SIEM_OPENSEARCH_URL"), help="also load into OpenSearch")
    args = parser.parse_args()
    base = {k: v for k, v in os.environ.items() if not k.startswith("SIEM_")}
    stores = ["embedded"] + (["opensearch"] if args.url else [])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        events = build(work / "logs", args.scale)
        print(
            f"input: {events} events in 36 objects (ALB, CloudTrail, VPC flow); {cores} cores; "
            f"load average {os.getloadavg()[0]:.1f} at start"
        )
        results: dict[tuple[str, int], list[dict]] = {}
        parsed: list[float] = []
        for rnd in range(args.rounds):
            parsed.append(run_parse(work / "logs", {**base, "SIEM_DATA_DIR": str(work / f"parse-{rnd}")}))
            for store in stores:
                for workers in args.workers:  # interleaved: each round runs every worker count once
                    env = {**base, "SIEM_DATA_DIR": str(work / f"data-{rnd}-{store}-{workers}")}
                    prefix = f"bench{uuid.uuid4().hex[:8]}"
                    if store == "opensearch":
                        env.update(SIEM_OPENSEARCH_URL=args.url, SIEM_OPENSEARCH_INDEX_PREFIX=prefix)
                    try:
                        result = run_load(work / "logs", workers, env)
                    finally:
                        if store == "opensearch":
                            _drop(args.url, prefix)
                    assert result["events"] == events, result["summary"]
                    result["ceiling"] = ceiling(workers)  # measured next to the run, as busy as it was
                    results.setdefault((store, workers), []).append(result)
        print(f"load average {os.getloadavg()[0]:.1f} at the end")
        print(
            f"{'store':<11} {'workers':>7} {'events/s':>9} {'vs 1':>6} {'ceiling':>8} {'CPU s/1k events':>16}"
            f" {'peak RSS MB':>12}"
            f"  (median of {args.rounds})"
        )
        parse_rate = events / statistics.median(parsed)
        print(f"{'siem parse':<11} {1:>7} {parse_rate:>9.0f}  (the same input to /dev/null, median of {args.rounds})")
        for store in stores:
            one = statistics.median(events / r["seconds"] for r in results[(store, args.workers[0])])
            print(f"{store}: one worker loads at {one / parse_rate:.0%} of `siem parse`'s speed (target >= 60%)")
            for workers in args.workers:
                runs = results[(store, workers)]
                rate = statistics.median(events / r["seconds"] for r in runs)
                peak = max(r["peak_mb"] for r in runs)
                cpu = statistics.median(r["cpu"] for r in runs) / events * 1000
                top = statistics.median(r["ceiling"] for r in runs)
                print(
                    f"{store:<11} {workers:>7} {rate:>9.0f} {rate / one:>5.2f}x {top:>7.2f}x {cpu:>16.3f} {peak:>12.0f}"
                )


def _drop(url: str, prefix: str) -> None:
    from opensearchpy import OpenSearch

    client = OpenSearch(hosts=[url], timeout=60)
    client.indices.delete(index=f"{prefix}-*", params={"ignore_unavailable": "true", "ignore": 404})
    for name in ("events", "deadletter", "alerts", "outbox"):
        client.indices.delete_index_template(name=f"{prefix}-{name}", params={"ignore": 404})
    for name in ("settings", "ecs"):
        client.cluster.delete_component_template(name=f"{prefix}-{name}", params={"ignore": 404})
    client.close()


if __name__ == "__main__":
    main()
