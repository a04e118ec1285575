"""``siem posture``: check an AWS account against the keep-the-logs checklist (read-only calls only).

Exit codes: 0 no failing finding at or above --fail-on; 1 there is one (a check that could not run
counts as failing: it cannot vouch for the account); 2 a problem to fix first (arguments, credentials).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from siem.cli_common import UserError
from siem.config import Settings
from siem.posture.model import SEVERITIES

if TYPE_CHECKING:
    import boto3

_REGION = re.compile(r"^[a-z]{2}(-[a-z0-9]+)+-\d+$")
DEFAULT_MIN_RETENTION_DAYS = 365


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "posture",
        help="check that an AWS account keeps the logs an incident will need",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--regions", nargs="+", metavar="REGION", help="regions to check (default: every enabled region)")
    p.add_argument(
        "--bucket",
        nargs="+",
        action="extend",
        default=[],
        metavar="NAME",
        help="log bucket(s) (default: the buckets CloudTrail trails deliver to)",
    )
    p.add_argument("--json", action="store_true", help="every finding as JSON on stdout")
    p.add_argument("--fail-on", choices=SEVERITIES, default="low", help="exit 1 on a finding this severe or more")
    p.add_argument(
        "--min-retention-days",
        type=int,
        default=DEFAULT_MIN_RETENTION_DAYS,
        help=f"shortest CloudWatch Logs retention accepted (default {DEFAULT_MIN_RETENTION_DAYS}; never-expire passes)",
    )
    p.add_argument(
        "--rules", action="append", metavar="PATH", help="rule files/folders in use (default: config detect.rules)"
    )
    p.add_argument("--all", action="store_true", help="list passing and not-applicable findings too")
    p.set_defaults(func=run_posture)


def _session_and_account(region: str | None) -> tuple[boto3.Session, str, str]:
    """A session from the default chain, the account it is in, and the region for account-wide calls."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    session = boto3.Session()
    home = region or session.region_name or "us-east-1"
    if session.get_credentials() is None:
        raise UserError("no AWS credentials found (boto3 default chain: environment, profile, instance or task role)")
    try:
        account = session.client("sts", region_name=home).get_caller_identity()["Account"]
    except NoCredentialsError:
        raise UserError(
            "no AWS credentials found (boto3 default chain: environment, profile, instance or task role)"
        ) from None
    except (BotoCoreError, ClientError) as exc:
        from siem.posture.model import describe_error

        raise UserError(f"AWS credentials not usable: {describe_error(exc)}") from None
    return session, account, home


def _check_regions(regions: list[str] | None) -> None:
    bad = [r for r in regions or [] if not _REGION.match(r)]
    if bad:
        raise UserError(f"--regions: {', '.join(bad)} is not an AWS region name (like eu-west-1)")


def _regions(args: argparse.Namespace, session: boto3.Session, home: str) -> list[str]:
    if args.regions:
        return list(dict.fromkeys(args.regions))
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        listed = session.client("ec2", region_name=home).describe_regions()["Regions"]
    except (BotoCoreError, ClientError) as exc:
        from siem.posture.model import describe_error

        raise UserError(f"cannot list the enabled regions ({describe_error(exc)}); pass --regions") from None
    regions = sorted(r["RegionName"] for r in listed)
    return [home, *(r for r in regions if r != home)] if home in regions else regions


def run_posture(args: argparse.Namespace, settings: Settings) -> int:
    from siem.posture import report
    from siem.posture.context import Context
    from siem.posture.runner import run

    if args.min_retention_days < 1:
        raise UserError(f"--min-retention-days {args.min_retention_days}: must be 1 or more")
    rules_paths = [Path(p) for p in (args.rules or settings.detect["rules"])]
    missing = [str(p) for p in rules_paths if not p.exists()]
    if missing:
        raise UserError(
            f"--rules: {', '.join(missing)} not found (the DeleteObject alert check reads the rules in use)"
        )
    _check_regions(args.regions)
    session, account, home = _session_and_account(args.regions[0] if args.regions else None)
    regions = _regions(args, session, home)
    ctx = Context(
        session=session,
        account_id=account,
        regions=regions,
        buckets_given=list(dict.fromkeys(args.bucket)),
        rules_paths=rules_paths,
        min_retention_days=args.min_retention_days,
    )
    findings = run(ctx)
    try:
        log_buckets = ctx.log_buckets()
    except Exception:  # already reported as an error finding by each bucket check
        log_buckets = []
    meta = {"account": account, "regions": regions, "log_buckets": log_buckets, "fail_on": args.fail_on}
    if args.json:
        print(report.render_json(findings, meta))
    else:
        print(report.render_text(findings, meta, colour=report.use_colour(sys.stdout), show_all=args.all))
    return report.exit_code(findings, args.fail_on)
