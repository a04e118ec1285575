"""The incident responder's question on the bundled samples: "would our rules have fired?".

The bundled CloudTrail, EKS audit, WAF, auth.log and auditd samples are loaded with `siem load`
into each store, then `siem detect run --once --since 2000-01-01 --until <now>` runs the shipped
rules. The expected alerts are written out by hand from reading the samples; both stores must give
exactly those, with the same alert ids, and a rerun must add nothing.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from siem.cli import main

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "tests" / "data" / "samples" / "logs"
TYPES = ("cloudtrail", "k8s_audit", "waf", "auth", "auditd")

# rule title → alerts, from the samples (read by hand; see each rule's file in detections/)
EXPECTED = Counter(
    {
        "CloudTrail Trail Stopped or Deleted": 1,  # test-delete-trail: DeleteTrail
        "CloudTrail Trail or Event Selectors Modified": 1,  # cloudtrail_log.json: UpdateTrail
        "Console Login Without MFA": 1,  # test-console-login: JohnDoe, MFAUsed No, success
        "IAM Access Key Created for Another User": 1,  # test-create-access-key: Alice for Bob
        "Console Password Set for Another IAM User": 1,  # test-update-login-profile
        "IAM MFA Device Deactivated or Deleted": 2,  # DeactivateMFADevice, DeleteVirtualMFADevice
        "Anonymous Kubernetes API Request Allowed": 1,  # anonymous_creates_namespace_foo
        "Binding to cluster-admin Created or Changed": 1,  # attach_cluster_admin_role
        "Human kubectl exec Into a Pod": 1,  # exec_pod by minikube-user
        "Audit Rules Changed or auditctl Run": 1,  # auditd CONFIG_CHANGE
        "Interactive Root Shell via sudo or su": 2,  # auth.log sudo -s / su
        "sudo Attempt by a User Not in sudoers": 2,  # "user NOT in sudoers"
    }
)


def _hunt(store_env: dict[str, str], monkeypatch, capsys) -> tuple[dict[str, dict], dict]:
    for name, value in store_env.items():
        monkeypatch.setenv(name, value)
    for kind in TYPES:
        assert main(["load", str(SAMPLES / kind)]) in (0, 1)  # the auditd sample holds one malformed line
    capsys.readouterr()
    until = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    hunt = ["detect", "run", "--once", "--json", "--rules", str(REPO / "detections"), "--since", "2000-01-01T00:00:00Z"]
    assert main([*hunt, "--until", until]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["alerts", "list", "--json", "--limit", "1000"]) == 0
    alerts = {a["alert"]["id"]: a for a in map(json.loads, capsys.readouterr().out.splitlines())}
    assert main([*hunt, "--until", until]) == 0
    rerun = json.loads(capsys.readouterr().out)
    assert rerun["alerts_new"] == 0 and rerun["alerts_updated"] == 0, rerun
    assert first["alerts_new"] == len(alerts)
    return alerts, first


def _titles(alerts: dict[str, dict]) -> Counter:
    return Counter(a["rule"]["name"] for a in alerts.values())


@pytest.fixture(scope="module")
def embedded_alerts(tmp_path_factory) -> dict[str, dict]:
    mp = pytest.MonkeyPatch()
    capsys = _Capture()
    try:
        mp.delenv("SIEM_OPENSEARCH_URL", raising=False)
        alerts, _ = _hunt({"SIEM_DATA_DIR": str(tmp_path_factory.mktemp("hunt") / "data")}, mp, capsys)
    finally:
        capsys.stop()
        mp.undo()
    return alerts


class _Capture:
    """capsys for a module-scoped fixture: stdout/stderr captured into buffers."""

    def __init__(self) -> None:
        import io
        import sys

        self._sys, self._saved = sys, (sys.stdout, sys.stderr)
        self.out, self.err = io.StringIO(), io.StringIO()
        sys.stdout, sys.stderr = self.out, self.err

    def readouterr(self):
        from collections import namedtuple

        out, err = self.out.getvalue(), self.err.getvalue()
        self.out.seek(0), self.out.truncate(), self.err.seek(0), self.err.truncate()
        return namedtuple("Captured", "out err")(out, err)

    def stop(self) -> None:
        self._sys.stdout, self._sys.stderr = self._saved


def test_embedded_store_retro_hunt_gives_exactly_the_expected_alerts(embedded_alerts) -> None:
    assert _titles(embedded_alerts) == EXPECTED
    for alert in embedded_alerts.values():
        assert alert["event"]["kind"] == "alert" and alert["rule"]["author"]
        assert alert["alert"]["status"] == "open" and alert["alert"]["event_ids"]


def test_opensearch_retro_hunt_gives_the_same_alert_ids_as_the_embedded_store(
    embedded_alerts, opensearch_url, index_prefix, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("SIEM_OPENSEARCH_INDEX_PREFIX", index_prefix)
    alerts, _ = _hunt({"SIEM_OPENSEARCH_URL": opensearch_url}, monkeypatch, capsys)
    assert _titles(alerts) == EXPECTED
    assert set(alerts) == set(embedded_alerts)
    for alert_id, alert in alerts.items():
        mine = embedded_alerts[alert_id]
        assert alert["alert"]["event_ids"] == mine["alert"]["event_ids"]
        assert alert["alert"]["count"] == mine["alert"]["count"]
