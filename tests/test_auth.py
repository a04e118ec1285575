"""linux.auth against Elastic's oracle, plus the sshd/sudo/su/PAM/useradd messages the oracle does not cover."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from _property_cases import FUZZ, assert_well_formed, parse_bytes
from hypothesis import given
from hypothesis import strategies as st
from oracle import assert_fields, expected, get, parse_file, sample

from siem.formats.auth import LOG_TYPE
from siem.formats.base import ParseOptions
from siem.formats.routing import Router

# The year each oracle was generated in (year-less timestamps; the harness's @timestamp was
# dynamic) and the timezone of its config (event.timezone "+0000", or none: UTC).
ORACLES = {
    "auth/test-5424.log": ParseOptions(syslog_year=2024),
    "auth/test-auth-rhel79.log": ParseOptions(syslog_year=2024),
    "auth/test-auth-ubuntu1204.log": ParseOptions(syslog_year=2023, syslog_timezone="+0000"),
    "auth/test-auth.log": ParseOptions(syslog_year=2023, syslog_timezone="+0000"),
    "auth/test-multiline.log": ParseOptions(syslog_year=2023, syslog_timezone="+0000"),
    "auth/test-timestamp.log": ParseOptions(syslog_timezone="+0000"),
}
ORACLE_FIELDS = [
    "@timestamp",
    "message",
    "host.hostname",
    "process.name",
    "process.pid",
    "user.name",
    "user.id",
    "user.effective.name",
    "source.ip",
    "source.port",
    "source.address",
    "source.domain",
    "group.name",
    "group.id",
    "event.action",
    "event.category",
    "event.type",
    "event.outcome",
    "log.syslog.priority",
    "system.auth.ssh.event",
    "system.auth.ssh.method",
    "system.auth.ssh.signature",
    "system.auth.ssh.dropped_ip",
    "system.auth.sudo.command",
    "system.auth.sudo.tty",
    "system.auth.sudo.pwd",
    "system.auth.sudo.user",
    "system.auth.sudo.error",
    "system.auth.useradd.home",
    "system.auth.useradd.shell",
]
_DISCONNECT = re.compile(r"^(Connection closed|Disconnected|Connection reset|Received disconnect|Disconnecting)")


def tolerated(ours: dict[str, Any], theirs: dict[str, Any]) -> set[str]:
    """Fields where we differ from Elastic on purpose; each rule is listed in docs/log-types/linux.auth.md."""
    msg = ours.get("message", "")
    skip: set[str] = set()
    if "message" not in theirs:  # 1. we keep message on every event; Elastic drops it when a pattern matched
        skip.add("message")
    if get(theirs, "system.auth.sudo.command"):  # 2. sudo: event.type start and an outcome
        skip |= {"event.type", "event.outcome"}
    if get(theirs, "user.name") == "":  # 3. "for user X by (uid=0)": user.name is X, no uid/effective
        skip |= {"user.name", "user.id", "user.effective.name"}
    if "authentication failure" in msg:  # 4. PAM failures: user= and rhost= read, action + type set
        skip |= {"user.name", "event.type", "event.action"}
    if _DISCONNECT.match(msg):  # 5. disconnect lines: source.* and ssh.event read
        skip |= {"source.ip", "source.address", "source.port", "system.auth.ssh.event"}
    if get(ours, "system.auth.ssh") is None and get(theirs, "system.auth.ssh.event"):
        skip.add("system.auth.ssh.event")  # 6. catch-all "... user X from H": no made-up ssh.event
    if re.match(r"(Successful|FAILED) su for ", msg):  # 7. su: who became whom, and whether it worked
        skip |= {"user.name", "user.effective.name", "event.category", "event.type", "event.outcome"}
    if msg.startswith("group added to "):  # 8. group name and id read
        skip |= {"group.name", "group.id"}
    if "password changed for " in msg:  # 9. password change is an IAM event on the user
        skip |= {"user.name", "event.action", "event.category", "event.type", "event.outcome"}
    if "pam_" in msg and get(theirs, "event.category") and get(theirs, "event.type") is None:  # 12. ECS pairs them
        skip.add("event.type")
        expected_type = ["start"] if "session opened" in msg else ["end"] if "session closed" in msg else ["info"]
        assert get(ours, "event.type") == expected_type, msg
    return skip


@pytest.mark.parametrize("name", ORACLES)
def test_auth_matches_elastic_oracle(name: str) -> None:
    events, letters = parse_file(sample(name), "linux.auth", ORACLES[name])
    oracle = expected(sample(name + "-expected.json"))
    assert not letters
    assert len(events) == len(oracle)
    for i, (ours, theirs) in enumerate(zip(events, oracle, strict=True)):
        fields = [f for f in ORACLE_FIELDS if f not in tolerated(ours, theirs)]
        assert_fields(ours, theirs, fields, label=f"{name} event {i}")
        assert ours["event"]["dataset"] == "linux.auth"
        assert set(get(theirs, "related.user") or []) <= set(ours.get("related", {}).get("user", []))


def test_tolerances_are_narrow() -> None:
    """Most oracle events need no tolerance at all: the rules above must not hide a broken mapping."""
    total = exempt = 0
    for name, options in ORACLES.items():
        events, _ = parse_file(sample(name), "linux.auth", options)
        for ours, theirs in zip(events, expected(sample(name + "-expected.json")), strict=True):
            total += 1
            msg = ours.get("message", "")
            typed_only = "pam_" in msg and get(theirs, "event.category") and get(theirs, "event.type") is None
            exempt += bool(tolerated(ours, theirs) - {"message"} - ({"event.type"} if typed_only else set()))
    assert total == 155 and exempt == 60


def _one(tmp_path: Path, message: str, program: str = "sshd[1234]") -> dict[str, Any]:
    f = tmp_path / "auth.log"
    f.write_text(f"Mar  3 10:00:00 ip-10-0-0-1 {program}: {message}\n")
    events, letters = parse_file(f, "linux.auth", ParseOptions(syslog_year=2024))
    assert not letters and len(events) == 1
    return events[0]


def test_failed_password_for_invalid_user(tmp_path: Path) -> None:
    doc = _one(tmp_path, "Failed password for invalid user admin from 203.0.113.9 port 51122 ssh2")
    assert doc["user"] == {"name": "admin"}
    assert doc["source"] == {"address": "203.0.113.9", "ip": "203.0.113.9", "port": 51122}
    assert doc["event"]["outcome"] == "failure" and doc["event"]["action"] == "ssh_login"
    assert doc["event"]["category"] == ["authentication"]
    assert doc["related"] == {"hosts": ["ip-10-0-0-1"], "ip": ["203.0.113.9"], "user": ["admin"]}


def test_accepted_keyboard_interactive_ipv6(tmp_path: Path) -> None:
    doc = _one(tmp_path, "Accepted keyboard-interactive/pam for alice from 2001:db8::7 port 2222 ssh2")
    assert doc["user"]["name"] == "alice" and doc["source"]["ip"] == "2001:db8::7"
    assert doc["event"]["outcome"] == "success" and doc["system"]["auth"]["ssh"]["method"] == "keyboard-interactive/pam"


def test_postponed_preauth(tmp_path: Path) -> None:
    doc = _one(tmp_path, "Postponed publickey for alice from 192.0.2.1 port 2200 ssh2 [preauth]")
    assert doc["user"]["name"] == "alice" and doc["source"]["port"] == 2200
    assert doc["system"]["auth"]["ssh"] == {"event": "Postponed", "method": "publickey"}
    assert "outcome" not in doc["event"]


def test_invalid_user_with_port(tmp_path: Path) -> None:
    doc = _one(tmp_path, "Invalid user oracle from 198.51.100.4 port 40022")
    assert doc["user"]["name"] == "oracle" and doc["source"]["port"] == 40022
    assert doc["event"]["outcome"] == "failure"


@pytest.mark.parametrize(
    "message",
    [
        "Connection closed by authenticating user root 198.51.100.4 port 40022 [preauth]",
        "Connection closed by invalid user root 198.51.100.4 port 40022 [preauth]",
        "Disconnected from authenticating user root 198.51.100.4 port 40022 [preauth]",
    ],
)
def test_preauth_disconnects_name_user_and_source(tmp_path: Path, message: str) -> None:
    doc = _one(tmp_path, message)
    assert doc["user"]["name"] == "root"
    assert doc["source"]["ip"] == "198.51.100.4" and doc["source"]["port"] == 40022
    assert "outcome" not in doc["event"]  # the Failed/Invalid line before it already says so


def test_sudo_with_group_and_failure(tmp_path: Path) -> None:
    doc = _one(
        tmp_path,
        "  alice : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/home/alice ; USER=root ; GROUP=wheel ; "
        "COMMAND=/usr/bin/cat /etc/shadow",
        "sudo",
    )
    assert doc["user"] == {"name": "alice", "effective": {"name": "root"}}
    sudo = doc["system"]["auth"]["sudo"]
    assert sudo["command"] == "/usr/bin/cat /etc/shadow" and sudo["group"] == "wheel"
    assert sudo["error"] == "3 incorrect password attempts"
    assert doc["event"]["outcome"] == "failure" and doc["event"]["category"] == ["process"]


def test_su_and_pam_auth_failure(tmp_path: Path) -> None:
    doc = _one(tmp_path, "FAILED su for root by alice", "su[99]")
    assert doc["user"] == {"name": "alice", "effective": {"name": "root"}}
    assert doc["event"]["outcome"] == "failure"
    doc = _one(
        tmp_path,
        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.77  user=root",
    )
    assert doc["user"]["name"] == "root" and doc["source"]["ip"] == "192.0.2.77"
    assert doc["event"]["outcome"] == "failure" and doc["event"]["category"] == ["authentication"]


def test_pam_session_for_user_by_uid_names_the_session_user(tmp_path: Path) -> None:
    doc = _one(tmp_path, "pam_unix(sshd:session): session opened for user ubuntu(uid=1000) by (uid=0)")
    assert doc["user"] == {"name": "ubuntu"}
    assert doc["event"]["action"] == "logged-on"


def test_account_administration(tmp_path: Path) -> None:
    doc = _one(tmp_path, "add 'mallory' to group 'sudo'", "usermod[7]")
    assert doc["user"]["name"] == "mallory" and doc["group"]["name"] == "sudo"
    assert doc["event"]["category"] == ["iam"] and doc["event"]["action"] == "group-member-added"
    doc = _one(tmp_path, "user mallory added by root to group docker", "gpasswd[8]")
    assert doc["user"] == {"name": "root", "target": {"name": "mallory"}}
    assert doc["related"]["user"] == ["root", "mallory"]
    doc = _one(
        tmp_path,
        "new user: name=bob, UID=1001, GID=1001, home=/home/bob, shell=/bin/bash, from=/dev/pts/0",
        "useradd[9]",
    )
    assert doc["user"] == {"name": "bob", "id": "1001"}
    assert doc["system"]["auth"]["useradd"] == {"home": "/home/bob", "shell": "/bin/bash"}
    assert doc["event"]["type"] == ["user", "creation"] and doc["event"]["outcome"] == "success"


def test_pathological_message_is_kept_unanalysed(tmp_path: Path) -> None:
    message = "Failed password for " + "x from 192.0.2.1 port 22 ssh2: " * 3000
    doc = _one(tmp_path, message)
    assert doc["message"] == message and "user" not in doc


def test_hostname_never_lands_in_source_ip(tmp_path: Path) -> None:
    doc = _one(tmp_path, "Failed password for bob from attacker.example port 22 ssh2")
    assert doc["source"] == {"address": "attacker.example", "domain": "attacker.example", "port": 22}


@pytest.mark.parametrize(
    "name", ["auth/test-auth.log", "auth/test-auth-ubuntu1204.log", "auth/test-auth-rhel79.log", "auth/test-5424.log"]
)
def test_content_sniffing_picks_auth(name: str) -> None:
    head = sample(name).read_bytes()[:4096]
    assert Router().choose("/no/known/path", head).dataset == "linux.auth"


@pytest.mark.parametrize("name", ["auth/test-timestamp.log", "syslog/test-preserve-event-original.log"])
def test_auth_sniff_on_zoneless_iso_timestamps(name: str) -> None:
    # Lines like "2019-06-14T10:40:20.912134 localhost sudo: pam_unix(...)". Through the Router the
    # ALB sniffer (earlier in the alphabet) claims them today: it takes "<ISO> x y:" for a Classic
    # ELB line. test-preserve-event-original.log is a syslog sample whose only line is a sudo PAM
    # message: by content alone it is auth; its path decides otherwise.
    assert LOG_TYPE.sniff(sample(name).read_bytes()[:4096])


@pytest.mark.parametrize(
    "name", ["auth/test-multiline.log", "syslog/test-darwin-syslog.log", "syslog/test-tz-offset.log"]
)
def test_generic_syslog_is_not_claimed(name: str) -> None:
    # test-multiline.log ("foo[1234]: ...") holds no authentication content: syslog by content.
    assert not LOG_TYPE.sniff(sample(name).read_bytes()[:4096])
    assert Router().choose("/no/known/path", sample(name).read_bytes()[:4096]).dataset == "linux.syslog"


@pytest.mark.parametrize(
    "path", ["/var/log/auth.log", "/var/log/secure", "/var/log/auth.log.1", "/var/log/secure-20240101.gz"]
)
def test_default_paths_route_to_auth(path: str) -> None:
    assert Router().by_path(path) is LOG_TYPE


_SAMPLE = b"".join(sample(n).read_bytes() for n in ORACLES)


@FUZZ
@given(
    cut=st.integers(min_value=0, max_value=len(_SAMPLE)),
    noise=st.binary(max_size=64),
    at=st.integers(min_value=0, max_value=len(_SAMPLE)),
    huge=st.sampled_from(
        [b"", b"Failed password for " + b"a" * 70000, b" ; " * 5000 + b"COMMAND=", "é".encode() * 2000, b"<86>1 -"]
    ),
)
def test_never_raises_on_mangled_input(cut: int, noise: bytes, at: int, huge: bytes) -> None:
    data = _SAMPLE[:cut]
    data = data[:at] + noise + huge + data[at:]
    events, letters = parse_bytes(data, "linux.auth", ParseOptions(syslog_year=2023))
    assert_well_formed(events, letters, "linux.auth")
    for doc in events:
        for part in ("source", "host"):
            ip = get(doc, f"{part}.ip")
            assert ip is None or ":" in ip or ip.count(".") == 3
