"""What every `siem` command shares: the user-error type, argument checks, the read-only store."""

from __future__ import annotations

from siem import formats
from siem.config import Settings
from siem.sinks import Store, open_store


class UserError(Exception):
    """Something the user can fix; printed without a traceback."""


def dataset_arg(value: str | None) -> str | None:
    if value in (None, "auto"):
        return None
    if value not in formats.registry():
        raise UserError(f"unknown log type {value!r}; `siem parse --list-types` lists them")
    return value


def instant_arg(flag: str, value: str | None) -> str | None:
    """An ISO 8601 date or time as a UTC instant string; a time without a zone is taken as UTC."""
    if value is None:
        return None
    from datetime import UTC, datetime

    from siem.normalize import iso_utc

    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"{flag} {value!r} is not an ISO 8601 date or time (e.g. 2024-05-01T09:00:00Z)") from None
    try:
        return iso_utc(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))
    except (OverflowError, ValueError):
        raise UserError(f"{flag} {value!r} is out of range (years 1 to 9999 in UTC)") from None


def check_limit(value: int) -> int:
    if value < 0:
        raise UserError(f"--limit {value}: must be 0 or more")
    return value


def open_store_for_reading(settings: Settings) -> Store:
    """Read-only commands open the embedded store read-only: they never block (or are blocked by) other readers.
    A store that does not exist is an error, not an empty answer: it is most often a mistyped data_dir."""
    if settings.opensearch["url"]:
        return open_store(settings)
    from siem.sinks.embedded import EmbeddedStore

    if not (settings.data_dir / "events.duckdb").exists():
        raise UserError(
            f"no embedded store in {settings.data_dir}: nothing was loaded there "
            "(check SIEM_DATA_DIR or data_dir, or load something first)"
        )
    return EmbeddedStore(settings.data_dir, read_only=True, memory_limit=settings.embedded["memory_limit"])
