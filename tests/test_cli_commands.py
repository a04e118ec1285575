"""The rest of the CLI surface: templates install, pivot by user, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

from oracle import sample

from siem.cli import main


def test_templates_install_twice_via_cli(opensearch_url, opensearch_client, index_prefix, monkeypatch, capsys) -> None:
    monkeypatch.setenv("SIEM_OPENSEARCH_URL", opensearch_url)
    monkeypatch.setenv("SIEM_OPENSEARCH_INDEX_PREFIX", index_prefix)
    assert main(["templates", "install"]) == 0
    assert main(["templates", "install"]) == 0
    assert f"{index_prefix}-events" in capsys.readouterr().out
    templates = opensearch_client.indices.get_index_template(name=f"{index_prefix}-events")["index_templates"]
    assert templates[0]["index_template"]["index_patterns"] == [f"{index_prefix}-events-*"]


def test_templates_without_cluster_is_a_clear_error(monkeypatch, capsys) -> None:
    monkeypatch.delenv("SIEM_OPENSEARCH_URL", raising=False)
    assert main(["templates", "install"]) == 2
    assert "templates need an OpenSearch cluster" in capsys.readouterr().err


def test_pivot_user_across_datasets_in_embedded_store(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("SIEM_OPENSEARCH_URL", raising=False)
    monkeypatch.setenv("SIEM_DATA_DIR", str(tmp_path / "data"))
    assert main(["load", str(sample("auth/test-auth.log")), "--type", "linux.auth"]) == 0
    assert main(["load", str(sample("cloudtrail/test-console-login-json.log"))]) == 0
    capsys.readouterr()
    assert main(["pivot", "--user", "root", "--format", "json"]) == 0
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert docs and all("root" in d["related"]["user"] for d in docs)
    assert {d["event"]["dataset"] for d in docs} >= {"linux.auth"}
    timestamps = [d["@timestamp"] for d in docs]
    assert timestamps == sorted(timestamps)


def test_pivot_rejects_a_non_ip(monkeypatch, tmp_path: Path, capsys) -> None:
    monkeypatch.delenv("SIEM_OPENSEARCH_URL", raising=False)
    monkeypatch.setenv("SIEM_DATA_DIR", str(tmp_path / "data"))
    assert main(["pivot", "--ip", "1.2.3.4' OR 1=1 --"]) == 2
    assert "is not an IP address" in capsys.readouterr().err


def test_bad_config_names_the_key(tmp_path: Path, capsys) -> None:
    config = tmp_path / "siem.yaml"
    config.write_text("opensearch:\n  verify_cert: false\n")
    assert main(["--config", str(config), "parse", "--list-types"]) == 2
    assert "opensearch.verify_cert: unknown key" in capsys.readouterr().err


def test_pivot_time_window_arguments(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("SIEM_OPENSEARCH_URL", raising=False)
    monkeypatch.setenv("SIEM_DATA_DIR", str(tmp_path / "data"))
    assert main(["load", str(sample("alb/test-alb.log"))]) == 0
    capsys.readouterr()
    assert (
        main(["pivot", "--ip", "192.168.131.39", "--since", "2024-10-25", "--until", "2024-10-26T03:00:00+09:00"]) == 0
    )
    out, err = capsys.readouterr()
    assert "2 of 2 events" in err and out.count("2024-10-25T17:33:59Z") == 4  # 2 rows + first/last seen
    assert main(["pivot", "--ip", "192.168.131.39", "--since", "last tuesday"]) == 2
    assert "--since 'last tuesday' is not an ISO 8601" in capsys.readouterr().err


def _commands(parser) -> set[str]:
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    return set(sub.choices)


def test_every_command_is_in_the_lazy_table_and_registered_by_its_module() -> None:
    from siem.cli import COMMANDS, build_parser

    assert _commands(build_parser()) == set(COMMANDS)  # a new command must be added to COMMANDS
    for command in COMMANDS:
        assert command in _commands(build_parser(command)), command


def test_siem_parse_starts_without_importing_detection_pivot_or_dashboards(tmp_path: Path) -> None:
    import subprocess
    import sys

    probe = (
        "import sys\nfrom siem.cli import main\ncode = main(['--config', sys.argv[1], 'parse', '--list-types'])\n"
        "print(sorted(m for m in ('sigma', 'siem.detect.rules', 'siem.pivot.query', 'siem.dashboards.build', 'tqdm')"
        " if m in sys.modules), code)"
    )
    config = tmp_path / "siem.yaml"
    config.write_text("{}\n")
    done = subprocess.run([sys.executable, "-c", probe, str(config)], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "[] 0"
