"""Notification routes in the config: validated at start-up, errors name the key, secrets never in the file."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import pytest

from siem.config import ConfigError, load_settings
from siem.detect.notify.outbox import parse_retry_after, scrub
from siem.detect.notify.routes import PAGERDUTY_URL, MissingSecret, UnknownRoute, select_routes
from siem.detect.notify.senders import dedup_key, group_key, slack_message


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "siem.yaml"
    path.write_text(text)
    return path


CONFIG = """
notifications:
  - {name: oncall, type: webhook, url: "https://hooks.example.internal/siem", secret_env: SIEM_WEBHOOK_SECRET,
     levels: [high, critical]}
  - {name: slack, type: slack, url_env: SIEM_SLACK_WEBHOOK_URL}
  - {name: pd, type: pagerduty, routing_key_env: SIEM_PAGERDUTY_KEY, timeout: 3}
  - {name: chat, type: apprise, url_env: SIEM_APPRISE_URL, levels: [critical]}
"""


def test_notifications_section_loads_routes_holding_only_variable_names(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, CONFIG), env={})
    oncall, slack, pd, chat = settings.notifications
    assert (oncall.name, oncall.type, oncall.url, oncall.secret_env) == (
        "oncall",
        "webhook",
        "https://hooks.example.internal/siem",
        "SIEM_WEBHOOK_SECRET",
    )
    assert oncall.levels == ("high", "critical")
    assert (slack.type, slack.url, slack.url_env) == ("slack", None, "SIEM_SLACK_WEBHOOK_URL")
    assert (pd.routing_key_env, pd.timeout, pd.resolve_url({})) == ("SIEM_PAGERDUTY_KEY", 3.0, PAGERDUTY_URL)
    assert (chat.type, chat.url_env, chat.levels) == ("apprise", "SIEM_APPRISE_URL", ("critical",))
    # values come from the environment at send time, and a missing one names the variable
    env = {"SIEM_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/x", "SIEM_PAGERDUTY_KEY": "k"}
    assert slack.resolve_url(env) == "https://hooks.slack.com/services/T/B/x"
    assert pd.secret(env) == "k"
    with pytest.raises(MissingSecret, match=r"^environment variable SIEM_WEBHOOK_SECRET is not set$"):
        oncall.secret(env)


def test_config_without_notifications_has_no_routes(tmp_path: Path) -> None:
    assert load_settings(_write(tmp_path, "data_dir: /srv/siem\n"), env={}).notifications == []


SECRETISH = "s3cr3tVALUEdoNotEcho"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("notifications: {oncall: x}", "notifications: expected a list"),
        ("notifications: [oops]", "notifications[0]: expected a mapping"),
        (
            f"notifications: [{{name: s, type: slack, url: 'https://hooks.slack.com/services/T0/B0/{SECRETISH}'}}]",
            "notifications[0].url: a Slack incoming-webhook URL is a secret",
        ),
        (
            f"notifications: [{{name: w, type: webhook, url: 'https://x.example/h', secret: {SECRETISH}}}]",
            "notifications[0].secret: secrets are not read from config files",
        ),
        (
            f"notifications: [{{name: p, type: pagerduty, routing_key: {SECRETISH}}}]",
            "notifications[0].routing_key: secrets are not read from config files; put the value in an environment "
            "variable and name it in routing_key_env",
        ),
        (
            f"notifications: [{{name: p, type: pagerduty, routing_key_env: '{SECRETISH}-with-dashes'}}]",
            "notifications[0].routing_key_env: expected the NAME of an environment variable",
        ),
        (
            f"notifications: [{{name: w, type: webhook, url: 'https://u:{SECRETISH}@x.example/h', secret_env: S}}]",
            "notifications[0].url: a URL with credentials",
        ),
        (
            f"notifications: [{{name: w, type: webhook, url: 'https://x.example/h?token={SECRETISH}', secret_env: S}}]",
            "notifications[0].url: a URL with credentials, a query or a fragment may hold a secret; use url_env",
        ),
        ("notifications: [{name: w, type: webhook, url: 'https://x.example/h'}]", "notifications[0].secret_env"),
        ("notifications: [{name: w, type: webhook, secret_env: S}]", "notifications[0].url: a webhook needs exactly"),
        ("notifications: [{name: s, type: slack}]", "notifications[0].url_env"),
        ("notifications: [{name: p, type: pagerduty}]", "notifications[0].routing_key_env"),
        ("notifications: [{name: t, type: teams}]", "notifications[0].type: expected one of webhook, slack"),
        (
            f"notifications: [{{name: a, type: apprise, url: 'tgram://{SECRETISH}/12345'}}]",
            "notifications[0].url: an Apprise URL is a secret; put it in an environment variable",
        ),
        ("notifications: [{name: a, type: apprise}]", "notifications[0].url_env"),
        ("notifications: [{name: s, type: slack, url_env: X, channel: '#sec'}]", "notifications[0]: unknown key(s)"),
        ("notifications: [{name: 'a b', type: slack, url_env: X}]", "notifications[0].name"),
        ("notifications: [{name: s, type: slack, url_env: X, levels: [urgent]}]", "notifications[0].levels"),
        ("notifications: [{name: s, type: slack, url_env: X, timeout: 0}]", "notifications[0].timeout"),
        (
            "notifications: [{name: s, type: slack, url_env: X}, {name: s, type: slack, url_env: Y}]",
            "notifications[1].name: duplicate route name 's'",
        ),
        (
            "notifications: [{name: s, type: slack, url_env: X}, {name: w, type: webhook, url: 'ftp://x', "
            "secret_env: S}]",
            "notifications[1].url: expected an http:// or https:// URL",
        ),
    ],
)
def test_notification_errors_name_the_key_and_never_echo_a_secret(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(_write(tmp_path, text), env={})
    assert message in str(info.value)
    assert SECRETISH not in str(info.value)


def test_routes_are_chosen_by_the_rules_notify_list_and_by_level(tmp_path: Path) -> None:
    routes = load_settings(_write(tmp_path, CONFIG), env={}).notifications
    assert [r.name for r in select_routes(routes, ["slack"], "medium")] == ["slack"]
    assert [r.name for r in select_routes(routes, ["slack"], "critical")] == ["oncall", "slack", "chat"]
    assert [r.name for r in select_routes(routes, [], "high")] == ["oncall"]
    assert select_routes(routes, [], "low") == []
    with pytest.raises(UnknownRoute, match=r"unknown route\(s\) \['pager'\]"):
        select_routes(routes, ["pager"], "low")


def test_group_key_reads_every_alert_document_shape() -> None:
    base = {"alert": {"id": "a1"}, "rule": {"id": "r1", "name": "R", "level": "low"}}
    as_map = {**base, "alert": {"id": "a1", "group": {"source.ip": "203.0.113.7", "user.name": "bob"}}}
    with_key = {**base, "alert": {"id": "a1", "group": {"source.ip": "x"}, "group_key": "source.ip=203.0.113.7"}}
    as_text = {**base, "alert": {"id": "a1", "group": "source.ip=203.0.113.7"}}
    assert group_key(as_map) == "source.ip=203.0.113.7, user.name=bob"
    assert group_key(with_key) == group_key(as_text) == "source.ip=203.0.113.7"
    assert dedup_key(with_key) == dedup_key(as_text) == "siem:r1:source.ip=203.0.113.7"
    assert dedup_key(base) == "siem:r1:a1"  # an ungrouped alert is its own incident
    fields = slack_message(as_map, "trigger")["blocks"][2]["fields"]
    assert {"type": "mrkdwn", "text": "*Group*\nsource.ip=203.0.113.7, user.name=bob"} in fields


def test_slack_text_is_escaped_so_an_attacker_controlled_reason_cannot_ping_or_link() -> None:
    alert = {"alert": {"id": "a", "reason": "login by <!channel> & <https://evil.example|bank>"}, "rule": {}}
    reason = slack_message(alert, "trigger")["blocks"][1]["text"]["text"]
    assert reason == "login by &lt;!channel&gt; &amp; &lt;https://evil.example|bank&gt;"


def test_scrub_removes_secret_urls_and_the_paths_urllib3_logs() -> None:
    url = "https://hooks.slack.com/services/T0/B0/tok3n"
    line = 'https://hooks.slack.com:443 "POST /services/T0/B0/tok3n HTTP/1.1" 200 2 ' + url
    assert "tok3n" not in scrub(line, [url])
    assert scrub("key=abc123 sent", ["abc123"]) == "key=[redacted] sent"


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("120", now) == 120.0
    when = format_datetime(datetime.fromtimestamp(now + 90, UTC), usegmt=True)
    assert parse_retry_after(when, now) == pytest.approx(90.0)
    assert parse_retry_after("999999999", now) == 24 * 3600.0
    assert parse_retry_after("soon", now) is None
