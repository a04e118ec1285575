"""The `siem` command: load, worker, parse, pivot, dead-letters, templates.

Errors a user can fix (bad config, unknown type, unreachable cluster) print one clear line and
exit 2; a run that dead-lettered records or failed objects exits 1 after printing its summary,
so a cron job or CI step notices; success exits 0.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from siem.cli_common import UserError
from siem.config import ConfigError, Settings, load_settings

# The module registering each command, so that `siem parse` does not import pySigma, the pivot
# renderers and the dashboards to start (about a third of a second of every short run).
COMMANDS = {
    "load": "siem.cli_load",
    "worker": "siem.cli_load",
    "parse": "siem.cli_load",
    "templates": "siem.cli_load",
    "pivot": "siem.cli_pivot",
    "dead-letters": "siem.cli_pivot",
    "rules": "siem.detect.cli_rules",
    "detect": "siem.detect.cli_detect",
    "alerts": "siem.detect.cli_detect",
    "posture": "siem.posture.cli",
    "dashboards": "siem.dashboards.cli",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with every command, or only with ``command``'s module when it names one."""
    parser = argparse.ArgumentParser(prog="siem", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="YAML config file (default: $SIEM_CONFIG)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and retries")
    sub = parser.add_subparsers(dest="command", required=True)
    modules = [COMMANDS[command]] if command in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for name in modules:
        importlib.import_module(name).register(sub)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The command word of ``argv``: the first argument that is not an option or --config's value."""
    args = iter(argv)
    for arg in args:
        if arg == "--config":
            next(args, None)
        elif not arg.startswith("-"):
            return arg
    return None


_QUIET_LOGGERS = ("urllib3", "opensearch", "botocore")  # a downed cluster is one line, not a page of retries


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_command(argv)).parse_args(argv)
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
