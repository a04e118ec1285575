"""What a check is and what it finds: one finding per resource, with why it matters and how to fix it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from siem.posture.context import Context


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "not_applicable"
    ERROR = "error"  # the check could not look (AccessDenied, service not enabled): it vouches for nothing


T = TypeVar("T")
SEVERITIES = ("high", "medium", "low")  # highest first; --fail-on takes one of these
SEVERITY_RANK = {"high": 3, "medium": 2, "low": 1}


@dataclass(frozen=True)
class Outcome:
    """What a check function says about one resource; the runner adds the check's metadata."""

    status: Status
    resource: str
    detail: str
    region: str | None = None


@dataclass(frozen=True)
class Check:
    """One point of the checklist. ``scope`` says what ``run`` is called with:

    ``account`` → None (once per run), ``region`` → each region name, ``bucket`` → each log bucket name.
    """

    id: str
    title: str
    severity: str
    scope: str
    why: str
    fix: str
    run: Callable[[Context, Any], Iterable[Outcome]]


@dataclass(frozen=True)
class Finding:
    check: str
    title: str
    severity: str
    status: Status
    region: str
    resource: str
    detail: str
    why: str
    fix: str

    @property
    def failing(self) -> bool:
        """A failure, or an error: a check that could not look cannot vouch for the account."""
        return self.status in (Status.FAIL, Status.ERROR)

    def to_dict(self) -> dict[str, str]:
        return {
            "check": self.check,
            "title": self.title,
            "severity": self.severity,
            "status": self.status.value,
            "region": self.region,
            "resource": self.resource,
            "detail": self.detail,
            "why": self.why,
            "fix": self.fix,
        }


def passed(resource: str, detail: str, region: str | None = None) -> Outcome:
    return Outcome(Status.PASS, resource, detail, region)


def failed(resource: str, detail: str, region: str | None = None) -> Outcome:
    return Outcome(Status.FAIL, resource, detail, region)


def not_applicable(resource: str, detail: str, region: str | None = None) -> Outcome:
    return Outcome(Status.NOT_APPLICABLE, resource, detail, region)


def error_code(exc: BaseException) -> str:
    return exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""


def describe_error(exc: BaseException) -> str:
    """One line for an API error: the code and AWS's message (which never carries secrets)."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = err.get("Code") or "error"
        message = err.get("Message") or str(exc)
        operation = getattr(exc, "operation_name", "")
        text = f"{code} on {operation}: {message}" if operation else f"{code}: {message}"
    elif isinstance(exc, BotoCoreError):
        text = f"{type(exc).__name__}: {exc}"
    else:
        text = f"internal error: {type(exc).__name__}: {exc}"
    return " ".join(text.split())[:500]


def guard(resource: str, look: Callable[[], T], region: str | None = None) -> T | Outcome:
    """Run one resource's look; an error there is that resource's finding, not the end of the check."""
    try:
        return look()
    except Exception as exc:  # AccessDenied on one bucket must not hide the verdict on the others
        return Outcome(Status.ERROR, resource, describe_error(exc), region)
