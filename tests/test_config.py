"""Configuration: validated at start-up, errors name the key, environment overrides every setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from siem.config import ConfigError, load_settings


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "siem.yaml"
    path.write_text(text)
    return path


def test_defaults_without_file() -> None:
    settings = load_settings(env={})
    assert settings.opensearch["url"] is None
    assert settings.opensearch["verify_certs"] is True
    assert str(settings.data_dir) == "siem-data"
    assert settings.parse_options().syslog_timezone == "UTC"


def test_file_values_and_environment_overrides(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
opensearch: {url: "https://os.example:9200", bulk_batch: 500}
parse: {timezone: Asia/Tokyo, trusted_proxies: [10.0.0.0/8]}
routes:
  - {match: '^nginx/', type: nginx.access}
""",
    )
    env = {
        "SIEM_OPENSEARCH_BULK_BATCH": "900",
        "SIEM_PARSE_TRUSTED_PROXIES": "192.168.0.0/16, 10.0.0.0/8",
        "SIEM_DATA_DIR": "/var/lib/siem",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
    }
    settings = load_settings(path, env=env)
    assert settings.opensearch["url"] == "https://os.example:9200"
    assert settings.opensearch["bulk_batch"] == 900
    assert settings.parse["trusted_proxies"] == ["192.168.0.0/16", "10.0.0.0/8"]
    assert settings.parse["timezone"] == "Asia/Tokyo"
    assert str(settings.data_dir) == "/var/lib/siem"
    assert settings.s3["endpoint_url"] == settings.sqs["endpoint_url"] == "http://127.0.0.1:5000"
    assert settings.routes[0].dataset == "nginx.access"


def test_config_file_from_environment(tmp_path: Path) -> None:
    path = _write(tmp_path, "data_dir: /srv/siem\n")
    assert str(load_settings(env={"SIEM_CONFIG": str(path)}).data_dir) == "/srv/siem"


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("opensearch: {urll: x}", {}, "opensearch.urll: unknown key"),
        ("opensearch: {password: hunter2}", {}, "set SIEM_OPENSEARCH_PASSWORD"),
        ("opensearch: {bulk_batch: many}", {}, "opensearch.bulk_batch: expected an integer"),
        ("opensearch: {verify_certs: 'no'}", {}, "opensearch.verify_certs: expected true or false"),
        ("opensearch: {url: 'ftp://x'}", {}, "opensearch.url: expected an http"),
        ("parse: {timezone: Mars/Olympus}", {}, "parse.timezone: unknown timezone"),
        ("parse: {trusted_proxies: [not-a-net]}", {}, "parse.trusted_proxies"),
        ("routes: [{match: '(', type: aws.alb}]", {}, "routes[0].match: invalid regular expression"),
        ("routes: [{match: 'x', type: aws.nope}]", {}, "routes[0].type: unknown log type 'aws.nope'"),
        ("routes: [{match: 'x', type: aws.alb, when: y}]", {}, "routes[0]: unknown key"),
        ("bogus: 1", {}, "unknown key(s) ['bogus']"),
        ("- a list", {}, "top level must be a mapping"),
        ("opensearch: [unclosed", {}, "invalid YAML"),
        ("", {"SIEM_OPENSEARCH_MAX_RETRIES": "lots"}, "SIEM_OPENSEARCH_MAX_RETRIES: expected an integer"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(_write(tmp_path, text), env=env)
    assert message in str(info.value)


def test_yaml_cannot_construct_python_objects(tmp_path: Path) -> None:
    path = _write(tmp_path, "data_dir: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_settings(path, env={})
