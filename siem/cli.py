"""The `siem` command: load, worker, parse, pivot, dead-letters, templates.

Errors a user can fix (bad config, unknown type, unreachable cluster) print one clear line and
exit 2; a run that dead-lettered records or failed objects exits 1 after printing its summary,
so a cron job or CI step notices; success exits 0.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from siem.cli_common import UserError
from siem.config import ConfigError, Settings, load_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="siem", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="YAML config file (default: $SIEM_CONFIG)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and retries")
    sub = parser.add_subparsers(dest="command", required=True)

    from siem.cli_load import register as register_load
    from siem.cli_pivot import register as register_pivot
    from siem.dashboards.cli import register as register_dashboards
    from siem.detect.cli_detect import register as register_detect
    from siem.detect.cli_rules import register as register_rules
    from siem.posture.cli import register as register_posture

    register_load(sub)
    register_pivot(sub)
    register_rules(sub)
    register_detect(sub)
    register_posture(sub)
    register_dashboards(sub)
    return parser


_QUIET_LOGGERS = ("urllib3", "opensearch", "botocore")  # a downed cluster is one line, not a page of retries


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    quieted = {} if args.verbose else {name: logging.getLogger(name).level for name in _QUIET_LOGGERS}
    for name in quieted:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        return _main(args)
    finally:  # main() is also called in-process (loader/, tests): leave logging as it was
        for name, level in quieted.items():
            logging.getLogger(name).setLevel(level)


def _main(args: argparse.Namespace) -> int:
    settings: Settings | None = None
    try:
        settings = load_settings(args.config)
        return int(args.func(args, settings))
    except (ConfigError, UserError) as exc:
        print(f"siem: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("siem: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        import duckdb
        from botocore.exceptions import BotoCoreError, ClientError

        from siem.sinks.embedded import StoreInUse
        from siem.sinks.opensearch import StoreUnavailable, redact_url

        if isinstance(exc, StoreInUse):
            print(f"siem: {exc}", file=sys.stderr)
            return 2
        if isinstance(exc, duckdb.OutOfMemoryException):  # a query or load over the embedded store's cap
            key = "detect_memory_limit" if args.command == "detect" else "memory_limit"
            limit = settings.embedded[key] if settings else "?"
            print(
                f"siem: the embedded store needs more than embedded.{key} ({limit}): raise it, e.g."
                f" SIEM_EMBEDDED_{key.upper()}=2GB ({_one_line(str(exc))})",
                file=sys.stderr,
            )
            return 2
        if isinstance(exc, BotoCoreError | ClientError):
            service = "S3" if args.command in ("load", "parse") else "AWS"
            print(f"siem: {service} error: {_one_line(str(exc))}", file=sys.stderr)
            return 2
        if isinstance(exc, StoreUnavailable | ConnectionError) or type(exc).__module__.startswith("opensearchpy"):
            message = str(exc)
            url = settings.opensearch["url"] if settings else None
            if url:  # credentials in the URL never reach the terminal or a log collector
                message = message.replace(url, redact_url(url))
            if settings and settings.opensearch_password:
                message = message.replace(settings.opensearch_password, "***")
            print(f"siem: OpenSearch error: {_one_line(message)}", file=sys.stderr)
            return 2
        raise


def _one_line(message: str) -> str:
    return " ".join(message.split())


if __name__ == "__main__":
    sys.exit(main())
