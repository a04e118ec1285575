"""CloudTrail throughput in every layout, next to a floor measured in the same run.

Inputs are representative: the records of every CloudTrail sample (tests/data/samples/logs and
../shared/samples: API calls, console sign-ins, AssumeRole, S3 data events, Insights) with varied
event times, IDs, source IPs and user names, written as AWS writes a delivery file (compact
`{"Records":[...]}`), with `", "`/`}, {` separators as json.dumps and many tools write, pretty-printed,
and as NDJSON; gzipped like an S3 object.

    .venv/bin/python bench/cloudtrail_layouts.py [--records N] [--rounds 3] [--clock cpu|wall] [--no-cli] [--profile]

Per layout it prints events/s of `siem parse FILE` (the CLI, NDJSON to a file) and of the in-process
pipeline (parse_object), records/s of the framing alone, and the floor: decompress + one orjson.loads
of the whole document (NDJSON: of each line), also with the cyclic GC off, with the ratio floor/ours
(against the faster floor) and the CLI against the issue's target of 30,000 events/s on one core.
--profile adds where the in-process time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import gzip
import io
import json
import pstats
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from siem import formats  # noqa: E402
from siem.formats.base import ParseOptions  # noqa: E402
from siem.formats.cloudtrail import iter_records  # noqa: E402
from siem.formats.routing import Router  # noqa: E402
from siem.pipeline import Event, parse_object  # noqa: E402
from siem.sources.local import local_objects  # noqa: E402

SAMPLE_DIRS = (REPO / "tests/data/samples/logs/cloudtrail", REPO.parent / "shared/samples/cloudtrail")
USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]


def sample_records() -> list[dict[str, Any]]:
    """Every record of the CloudTrail samples (digests and oracle outputs left out)."""
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    for folder in SAMPLE_DIRS:
        for path in sorted(folder.glob("*")):
            if path.name in seen or "expected" in path.name or "digest" in path.name:
                continue
            if path.suffix not in (".log", ".json"):
                continue
            seen.add(path.name)
            text = path.read_bytes()
            if text.lstrip().startswith(b'{"Records"') or b'"Records"' in text[:64]:
                records += orjson.loads(text)["Records"]
            else:
                records += [orjson.loads(line) for line in text.splitlines() if line.strip()]
    return records


def varied(count: int, seed: int = 9) -> list[dict[str, Any]]:
    """``count`` records drawn from the samples, each with its own time, IDs, source IP and user."""
    rng = random.Random(seed)
    base = sample_records()
    start = 1_700_000_000
    out = []
    for i in range(count):
        record = orjson.loads(orjson.dumps(rng.choice(base)))
        moment = time.gmtime(start + i * 3 + rng.randrange(3))
        record["eventTime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", moment)
        record["eventID"] = str(uuid.UUID(int=rng.getrandbits(128)))
        record["requestID"] = str(uuid.UUID(int=rng.getrandbits(128)))
        if "." in str(record.get("sourceIPAddress", "")).replace("amazonaws.com", ""):
            octets = (rng.choice((198, 203, 192)), rng.randrange(256), rng.randrange(256), rng.randrange(1, 255))
            record["sourceIPAddress"] = ".".join(map(str, octets))
        ident = record.get("userIdentity")
        user = rng.choice(USERS)
        if isinstance(ident, dict):
            if ident.get("type") == "IAMUser":
                ident["userName"] = user
                ident["arn"] = f"arn:aws:iam::123456789012:user/{user}"
            elif ident.get("type") == "AssumedRole" and isinstance(ident.get("arn"), str):
                ident["arn"] = ident["arn"].rsplit("/", 1)[0] + f"/{user}@example.com"
                role_id = str(ident.get("principalId", "AROAEXAMPLE")).split(":")[0]
                ident["principalId"] = f"{role_id}:{user}@example.com"
        out.append(record)
    return out


def layouts(records: list[dict[str, Any]]) -> dict[str, bytes]:
    """The same records in each layout a CloudTrail object comes in."""
    return {
        "compact": b'{"Records":[' + b",".join(orjson.dumps(r) for r in records) + b"]}",
        "spaced": json.dumps({"Records": records}).encode(),
        "pretty": orjson.dumps({"Records": records}, option=orjson.OPT_INDENT_2),
        "ndjson": b"".join(orjson.dumps(r) + b"\n" for r in records),
    }


def floor(path: Path) -> int:
    """Decompress + one orjson parse of the whole document: what any parser must pay."""
    with gzip.open(path, "rb") as raw:
        data = raw.read()
    if data.startswith(b"{"):
        try:
            return len(orjson.loads(data)["Records"])
        except orjson.JSONDecodeError:
            pass
    return sum(1 for line in data.splitlines() if orjson.loads(line))


def floor_no_gc(path: Path) -> int:
    """The floor with Python's cyclic GC off: a whole 50 MB document is a tree of millions of objects
    built in one go, which the GC walks again and again as it grows; records framed a batch at a time
    never pile up like that, so the plain floor can be slower than our framing."""
    gc.disable()
    try:
        return floor(path)
    finally:
        gc.enable()


def framing(path: Path) -> int:
    """Decompress + iter_records alone (no mapping)."""
    with gzip.open(path, "rb") as raw:
        return sum(1 for item in iter_records(io.BufferedReader(raw, 1 << 20)) if isinstance(item, tuple))


def in_process(path: Path) -> int:
    n = 0
    forced = formats.get("aws.cloudtrail")
    for obj in local_objects(path):
        for item in parse_object(obj, Router(), ParseOptions(), forced):
            if isinstance(item, Event):
                n += 1
    return n


def cli(path: Path) -> int:
    """`siem parse --type aws.cloudtrail FILE` (the installed console script) in a child; its events."""
    out = path.with_suffix(".ndjson")
    with open(out, "wb") as sink:
        subprocess.run(
            [str(Path(sys.executable).with_name("siem")), "parse", "--type", "aws.cloudtrail", str(path)],
            cwd=REPO,
            stdout=sink,
            stderr=subprocess.DEVNULL,
            check=False,
        )
    with open(out, "rb") as written:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: written.read(1 << 20), b""))


CLOCK = "cpu"


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    """Seconds ``fn`` took and what it returned: CPU seconds of this process and its children (what
    one core gives, steady on a shared machine) with --clock cpu, elapsed seconds with --clock wall."""
    if CLOCK == "wall":
        start = time.perf_counter()
        n = fn()
        return time.perf_counter() - start, n
    before = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    n = fn()
    after = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return sum(a.ru_utime + a.ru_stime - b.ru_utime - b.ru_stime for a, b in zip(after, before, strict=True)), n


def profile(path: Path, top: int = 14) -> None:
    """Where the in-process time goes: framing (iter_records and below) vs mapping (to_ecs, finalize)."""
    prof = cProfile.Profile()
    prof.enable()
    in_process(path)
    prof.disable()
    stats = pstats.Stats(prof)
    total = stats.total_tt
    wanted = ("iter_records", "cloudtrail_to_ecs", "finalize", "open_decompressed", "readinto")
    for (file, _, func), (_, _, _, cum, _) in sorted(stats.stats.items(), key=lambda kv: -kv[1][3]):
        if func in wanted:
            print(f"    {func:22} {cum:6.2f} s cumulative ({cum / total:5.1%} of {total:.2f} s)  {Path(file).name}")
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    print("\n".join("    " + line for line in out.getvalue().splitlines()[6:] if line.strip()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="layouts: compact spaced pretty ndjson")
    parser.add_argument("--no-cli", action="store_true", help="skip the `siem parse` child process")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    args = parser.parse_args()
    global CLOCK
    CLOCK = args.clock
    records = varied(args.records)
    print(
        f"{args.records} records from {len(sample_records())} sample records, {args.rounds} interleaved rounds, "
        f"median {args.clock} seconds"
    )
    header = f"{'layout':8} {'MB':>6} {'CLI ev/s':>10} {'in-proc ev/s':>13} {'framing rec/s':>14} {'floor rec/s':>12}"
    print(header + f" {'no-GC floor':>12} {'floor/CLI':>9} {'floor/in-proc':>13} {'CLI/30k':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, body in layouts(records).items():
            if args.only and name not in args.only:
                continue
            path = Path(tmp) / f"{name}.json.gz"
            path.write_bytes(gzip.compress(body, compresslevel=6))
            times: dict[str, list[float]] = {"cli": [], "in": [], "frame": [], "floor": [], "nogc": []}
            for _ in range(args.rounds):  # interleaved, so drift hits every column alike
                if not args.no_cli:
                    t, n = timed(lambda: cli(path))  # noqa: B023
                    assert n == args.records, f"{name}: `siem parse` printed {n} events of {args.records}"
                    times["cli"].append(t)
                t, n = timed(lambda: in_process(path))  # noqa: B023
                assert n == args.records, f"{name}: {n} events of {args.records}"
                times["in"].append(t)
                times["frame"].append(timed(lambda: framing(path))[0])  # noqa: B023
                times["floor"].append(timed(lambda: floor(path))[0])  # noqa: B023
                times["nogc"].append(timed(lambda: floor_no_gc(path))[0])  # noqa: B023
            rate = {k: args.records / statistics.median(v) if v else float("nan") for k, v in times.items()}
            best = max(rate["floor"], rate["nogc"])  # the ratios are against the faster floor
            print(
                f"{name:8} {len(body) / 1e6:6.1f} {rate['cli']:>10,.0f} {rate['in']:>13,.0f} {rate['frame']:>14,.0f}"
                f" {rate['floor']:>12,.0f} {rate['nogc']:>12,.0f} {best / rate['cli']:>9.2f} {best / rate['in']:>13.2f}"
                f" {rate['cli'] / 30_000:>8.2f}"
            )
            if args.profile:
                profile(path)


if __name__ == "__main__":
    main()
