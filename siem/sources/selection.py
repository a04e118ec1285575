"""Which objects of a folder or prefix a load takes: --since/--until by the date in the key, and
--include/--exclude globs.

Log deliveries put the date in the key: ``AWSLogs/<account>/<service>/<region>/YYYY/MM/DD/`` (ALB,
CloudTrail, VPC flow, Route 53 Resolver), Firehose ``YYYY/MM/DD/HH/`` (WAF, CloudWatch Logs
subscriptions), fluentd ``%Y/%m/%d``, Hive-style ``year=YYYY/month=MM/day=DD/hour=HH/`` and one
``YYYY-MM-DD`` (or ``dt=YYYY-MM-DD``) folder. Reading that date from folder names lets a backfill of
one week skip listing years of other folders. A key with no date in it cannot be ruled out and is
kept; events inside a selected object are not filtered (see README, "Backfill by time range").
"""

from __future__ import annotations

import calendar
import fnmatch
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# Date components of a key, in order: (year,), (year, month), (year, month, day), (..., hour).
DateParts = tuple[int, ...]
Window = tuple[datetime, datetime]  # [start, end) in UTC

_DAY_FOLDER = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_HIVE_NAMES = ("year", "month", "day", "hour", "dt", "date")


def _next_component(parts: DateParts, segment: str) -> DateParts | None:
    """parts extended by one folder name when it is the next component of a date, else None."""
    name, _, value = segment.partition("=")
    if not value:
        value = name
    elif name.lower() not in _HIVE_NAMES:
        return None
    day = _DAY_FOLDER.fullmatch(value)
    if day and not parts:
        year, month, dom = (int(g) for g in day.groups())
        return (year, month, dom) if _valid(year, month, dom) else None
    if not value.isdigit():
        return None
    number = int(value)
    if not parts:
        return (number,) if len(value) == 4 and 1970 <= number <= 2999 else None
    if len(value) != 2 or len(parts) >= 4:
        return None
    if len(parts) == 1:
        return (*parts, number) if 1 <= number <= 12 else None
    if len(parts) == 2:
        return (*parts, number) if _valid(parts[0], parts[1], number) else None
    return (*parts, number) if number <= 23 else None


def _valid(year: int, month: int, day: int) -> bool:
    return 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]


def key_date(folders: str) -> DateParts:
    """The date a folder path names (``a/2024/05/01/`` → (2024, 5, 1)); () when it names none. The last
    run of date folders counts (``/backups/2023/AWSLogs/.../2024/05/01`` is 2024-05-01); a name that is
    not the next component ends a run (minute folders under an hour add nothing)."""
    parts: DateParts = ()
    running = False
    for segment in folders.split("/"):
        if not segment:
            continue
        extended = _next_component(parts, segment) if running else None
        if extended is None:
            extended = _next_component((), segment)
        running = extended is not None
        if extended is not None:
            parts = extended
    return parts


def window(parts: DateParts) -> Window | None:
    """The [start, end) a date covers: a year, a month, a day or an hour."""
    if not parts:
        return None
    year = parts[0]
    if len(parts) == 1:
        return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    month = parts[1]
    if len(parts) == 2:
        end = datetime(year + 1, 1, 1, tzinfo=UTC) if month == 12 else datetime(year, month + 1, 1, tzinfo=UTC)
        return datetime(year, month, 1, tzinfo=UTC), end
    start = datetime(year, month, parts[2], parts[3] if len(parts) == 4 else 0, tzinfo=UTC)
    return start, start + (timedelta(days=1) if len(parts) == 3 else timedelta(hours=1))


@dataclass(frozen=True, slots=True)
class Selection:
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @property
    def dated(self) -> bool:
        return self.since is not None or self.until is not None

    @property
    def active(self) -> bool:
        return self.dated or bool(self.include or self.exclude)

    def overlaps(self, span: Window | None) -> bool:
        """Whether a folder of this date may hold objects in range (an undated one always may)."""
        if span is None:
            return True
        start, end = span
        return (self.since is None or end > self.since) and (self.until is None or start < self.until)

    def covers(self, span: Window | None) -> bool:
        """Whether everything under a folder of this date is in range (no need to look deeper)."""
        if span is None:
            return not self.dated
        start, end = span
        return (self.since is None or start >= self.since) and (self.until is None or end <= self.until)

    def admits(self, relative: str, folders: str) -> bool:
        """Whether an object is loaded: its folders' date overlaps the range, its path relative to the
        folder or prefix given matches an --include (when there are any) and no --exclude. Globs are
        shell-style and ``*`` crosses ``/`` (as in ``aws s3 cp --exclude``)."""
        if self.dated and not self.overlaps(window(key_date(folders))):
            return False
        if self.include and not any(fnmatch.fnmatchcase(relative, glob) for glob in self.include):
            return False
        return not any(fnmatch.fnmatchcase(relative, glob) for glob in self.exclude)

    def describe(self) -> str:
        """The selection in words, for "nothing matched" errors."""
        words = []
        if self.since:
            words.append(f"--since {self.since.isoformat()}")
        if self.until:
            words.append(f"--until {self.until.isoformat()}")
        words += [f"--include {g!r}" for g in self.include] + [f"--exclude {g!r}" for g in self.exclude]
        return " ".join(words)
