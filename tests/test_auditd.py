"""linux.auditd against Elastic's oracle (one event per line there, one per serial here), plus
the EXECVE/enriched/interleaving cases an analyst relies on."""

from __future__ import annotations

from typing import Any

import pytest
from _property_cases import FUZZ, Parsed, assert_well_formed, damaged, dead_letter_between
from hypothesis import given
from oracle import assert_fields, expected, get, parse_bytes, parse_file, routed, sample, sniffed

from siem.formats.auditd import LOG_TYPE

ORACLES = [
    "auditd/test-auditd-raw.log",
    "auditd/test-auditd-enriched.log",
    "auditd/test-auditd-useradd.log",
    "auditd/test-truncated-execve.log",
]
FIELDS = [
    "@timestamp",
    "auditd.log.sequence",
    "user.id",
    "user.name",
    "user.audit.id",
    "user.effective.id",
    "user.effective.name",
    "user.target.id",
    "user.target.name",
    "user.group.id",
    "user.saved.id",
    "user.terminal",
    "group.id",
    "source.ip",
    "source.address",
    "destination.address",
    "process.pid",
    "process.parent.pid",
    "process.executable",
    "process.name",
    "process.args",
    "process.args_count",
    "process.exit_code",
    "process.working_directory",
    "host.architecture",
    "container.name",
    "container.runtime",
    "auditd.log.avc.action",
    "auditd.log.avc.request",
    "auditd.log.proctitle",
    "auditd.log.data",
    "auditd.log.laddr",
    "auditd.log.lport",
    "auditd.log.saddr_fam",
    "auditd.log.op",
    "auditd.log.ses",
]
EVENT_FIELDS = ["event.action", "event.category", "event.type", "event.outcome"]


def tolerated(ours: dict[str, Any], theirs: dict[str, Any], grouped: bool) -> set[str]:
    """Deliberate differences, each listed in docs/log-types/linux.auditd.md."""
    skip: set[str] = set()
    if grouped:  # 1. one event per serial: the event fields describe the whole group
        skip |= set(EVENT_FIELDS)
        skip |= {f for f in FIELDS if get(theirs, f) is None}  # another record of the group may set it
    kind = get(ours, "auditd.log.record_type")
    if kind == "SYSCALL" and get(ours, "event.action") != "syscall":  # 2. syscall numbers resolved
        skip |= {"event.action", "event.category", "event.type"}
    if kind == "SYSCALL":  # 2. success= gives the outcome
        skip.add("event.outcome")
    if "EXECVE" in (get(ours, "auditd.log.record_types") or [kind]):  # 3. process start; arg chunks/gaps kept
        skip |= {"event.action", "event.category", "event.type", "process.args"}
    if kind == "GRP_MGMT":  # 5. the managed group is id=, not uid=
        skip.add("group.id")
    if kind in ("SOCKADDR", "CKADDR") and get(theirs, "auditd.log.saddr_fam") is None:  # 6. raw saddr decoded
        skip |= {"auditd.log.laddr", "auditd.log.lport", "auditd.log.saddr_fam"}
    return skip


def ecs_types(theirs: dict[str, Any]) -> dict[str, Any]:
    """8. go-libaudit's event.type "stop" is not an ECS value: we say "end" (the oracle enshrines it)."""
    types = get(theirs, "event.type")
    if not isinstance(types, list) or "stop" not in types:
        return theirs
    return {**theirs, "event": {**theirs["event"], "type": ["end" if t == "stop" else t for t in types]}}


@pytest.mark.parametrize("name", ORACLES)
def test_auditd_matches_elastic_oracle(name: str) -> None:
    events, letters = parse_file(sample(name), "linux.auditd")
    oracle = expected(sample(name + "-expected.json"))
    # 7. a line without an audit(epoch:serial) header is a dead letter (Elastic: an event with no time)
    headerless = [t for t in oracle if "@timestamp" not in t]
    assert len(letters) == len(headerless)
    oracle = [t for t in oracle if "@timestamp" in t]
    position = 0
    for ours in events:
        size = len(get(ours, "auditd.log.record_types") or [None])
        for theirs in oracle[position : position + size]:
            assert get(theirs, "auditd.log.sequence") == get(ours, "auditd.log.sequence")
            fields = [f for f in FIELDS + EVENT_FIELDS if f not in tolerated(ours, theirs, size > 1)]
            assert_fields(ours, ecs_types(theirs), fields, label=f"{name} sequence {get(ours, 'auditd.log.sequence')}")
        position += size
        assert ours["event"]["dataset"] == "linux.auditd"
    assert position == len(oracle)


def test_records_of_one_serial_become_one_event() -> None:
    events, _ = parse_file(sample("auditd/test-auditd-raw.log"), "linux.auditd")
    assert len(events) == 50  # 52 lines: CWD+PATH of serial 479 joined, one header-less line dead-lettered
    cwd_path = next(e for e in events if e["auditd"]["log"]["sequence"] == 479)
    assert cwd_path["auditd"]["log"]["record_types"] == ["CWD", "PATH"]
    assert cwd_path["process"]["working_directory"] == "/home/some_user"
    assert cwd_path["file"] == {
        "path": "/sbin/auditctl", "inode": "17367907", "mode": "0100750", "uid": "0", "gid": "0", "device": "08:01"
    }  # fmt: skip
    # the same serial far apart (a duplicated USER_LOGOUT) stays two events
    assert sum(e["auditd"]["log"]["sequence"] == 424 for e in events) == 2


def test_truncated_execve_records_join_with_gap_markers() -> None:
    events, letters = parse_file(sample("auditd/test-truncated-execve.log"), "linux.auditd")
    oracle = expected(sample("auditd/test-truncated-execve.log-expected.json"))
    assert not letters and len(events) == 2
    first, second = (e["process"]["args"] for e in events)
    a, b, c = (o["process"]["args"] for o in oracle[:3])
    # records 8..11, 10517.., 10091.. of serial 5009988, in argument order, gaps marked; a11[1] is
    # the second chunk of argument 11 (first chunk lost), so it is marked too
    assert a[4] == "11"
    assert first == [
        *a[:4], "[...]11", "[... 10079 truncated arguments ...]", *c[1:], "[... 355 truncated arguments ...]", *b[1:]
    ]  # fmt: skip
    # a73[1] is the second chunk of argument 73 (its first chunk was lost): kept, marked
    assert second == ["[... 73 truncated arguments ...]", "[...]arg73.gz", *oracle[3]["process"]["args"][1:]]
    assert events[1]["process"]["command_line"].startswith("'[...]arg73.gz' /redacted/path/for/arg74 ")


def _parse(lines: list[str]) -> Parsed:
    return parse_bytes("".join(line + "\n" for line in lines).encode(), "linux.auditd")


# `-a always,exit -F arch=b64 -S execve -k execve`: alice runs sudo, which runs a command as root.
SUDO_EXEC = [
    "type=SYSCALL msg=audit(1700000000.123:4242): arch=c000003e syscall=59 success=yes exit=0 a0=55d0 a1=55d1 a2=55d2 "
    "a3=0 items=2 ppid=3001 pid=3002 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=7 "
    'comm="cat" exe="/usr/bin/cat" subj=unconfined key="execve"'
    '\x1dARCH=x86_64 SYSCALL=execve AUID="alice" UID="root" GID="root" EUID="root" SUID="root" FSUID="root" '
    'EGID="root" SGID="root" FSGID="root"',
    'type=EXECVE msg=audit(1700000000.123:4242): argc=3 a0="cat" a1="/etc/shadow" a2=2F746D702F6D792066696C65',
    'type=CWD msg=audit(1700000000.123:4242): cwd="/home/alice"',
    'type=PATH msg=audit(1700000000.123:4242): item=0 name="/usr/bin/cat" inode=3 dev=ca:01 mode=0100755 ouid=0 '
    'ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0\x1dOUID="root" OGID="root"',
    'type=PATH msg=audit(1700000000.123:4242): item=1 name="/lib64/ld-linux-x86-64.so.2" inode=4 dev=ca:01 '
    "mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL",
    "type=PROCTITLE msg=audit(1700000000.123:4242): proctitle=636174002F6574632F736861646F77",
    "type=EOE msg=audit(1700000000.123:4242): ",
]


def test_execve_group_makes_the_command_searchable() -> None:
    events, letters = _parse(SUDO_EXEC)
    assert not letters and len(events) == 1
    doc = events[0]
    assert doc["@timestamp"] == "2023-11-14T22:13:20.123000Z"
    assert doc["event"]["action"] == "executed"
    assert doc["event"]["category"] == ["process"] and doc["event"]["type"] == ["start"]
    assert doc["event"]["outcome"] == "success"
    process = doc["process"]
    assert process["args"] == ["cat", "/etc/shadow", "/tmp/my file"]  # hex argument decoded
    assert process["command_line"] == "cat /etc/shadow '/tmp/my file'"
    assert process["args_count"] == 3
    assert process["executable"] == "/usr/bin/cat" and process["name"] == "cat"
    assert process["pid"] == 3002 and process["parent"]["pid"] == 3001
    assert process["working_directory"] == "/home/alice"
    assert process["title"] == "cat /etc/shadow"
    user = doc["user"]
    assert user["audit"] == {"id": "1000", "name": "alice"}  # the human behind sudo
    assert user["id"] == "0" and user["name"] == "root" and user["effective"]["name"] == "root"
    assert doc["related"]["user"] == ["alice", "root"]
    assert doc["host"]["architecture"] == "x86_64"
    assert doc["file"]["path"] == "/usr/bin/cat" and doc["file"]["owner"] == "root"
    log = doc["auditd"]["log"]
    assert log["key"] == "execve" and log["syscall"] == "execve" and log["sequence"] == 4242
    assert log["record_types"] == ["SYSCALL", "EXECVE", "CWD", "PATH", "PATH", "PROCTITLE"]
    assert [p["name"] for p in log["paths"]] == ["/usr/bin/cat", "/lib64/ld-linux-x86-64.so.2"]


def test_interleaved_serials_still_join_and_keep_order() -> None:
    other = (
        "type=USER_CMD msg=audit(1700000000.200:4243): pid=1 uid=1000 auid=1000 ses=7 "
        "msg='cwd=\"/\" cmd=6C73 res=success'"
    )
    events, letters = _parse([SUDO_EXEC[0], other, *SUDO_EXEC[1:]])
    assert not letters
    assert [e["auditd"]["log"]["sequence"] for e in events] == [4242, 4243]
    assert events[0]["process"]["args"][0] == "cat"


def test_network_syscall_on_aarch64_names_the_destination() -> None:
    events, _ = _parse(
        [
            "type=SYSCALL msg=audit(1700000001.000:77): arch=c00000b7 syscall=203 success=no exit=-101 items=0 "
            'ppid=1 pid=900 auid=1001 uid=1001 gid=1001 euid=1001 comm="curl" exe="/usr/bin/curl" key="net"',
            "type=SOCKADDR msg=audit(1700000001.000:77): saddr=02000050A9FEA9FE0000000000000000",
        ]
    )
    doc = events[0]
    assert doc["event"]["action"] == "connected-to" and doc["event"]["outcome"] == "failure"
    assert doc["network"] == {"direction": "egress"}
    assert doc["destination"] == {"ip": "169.254.169.254", "address": "169.254.169.254", "port": 80}
    assert doc["related"]["ip"] == ["169.254.169.254"]


def test_socket_address_without_syscall_is_still_pivotable() -> None:
    events, _ = _parse(["type=SOCKADDR msg=audit(1700000003.000:99): saddr=02000050A9FEA9FE0000000000000000"])
    doc = events[0]
    assert "destination" not in doc and "source" not in doc  # no syscall, no direction
    assert doc["related"]["ip"] == ["169.254.169.254"]


def test_stopped_service_is_an_ecs_end() -> None:
    events, _ = _parse(
        ["type=SERVICE_STOP msg=audit(1700000004.000:5): pid=1 uid=0 auid=4294967295 msg='unit=cron res=success'"]
    )
    assert events[0]["event"]["type"] == ["end"] and events[0]["event"]["action"] == "stopped-service"


def test_failed_ssh_login_record() -> None:
    events, _ = _parse(
        [
            "type=USER_LOGIN msg=audit(1700000002.000:88): pid=5 uid=0 auid=4294967295 ses=4294967295 "
            'msg=\'op=login acct="admin" exe="/usr/sbin/sshd" hostname=? addr=203.0.113.5 terminal=sshd res=failed\''
        ]
    )
    doc = events[0]
    assert doc["event"]["action"] == "logged-in" and doc["event"]["outcome"] == "failure"
    assert doc["user"]["name"] == "admin" and doc["source"]["ip"] == "203.0.113.5"
    assert doc["event"]["category"] == ["authentication"]


def test_absurd_argument_indexes_cost_nothing() -> None:
    events, _ = _parse(['type=EXECVE msg=audit(1.0:1): argc=2 a0="x" a1[99999999999]="tail" a99999999999999="z"'])
    assert events[0]["process"]["args"] == ["x", "[...]tail", "[... 99999999999997 truncated arguments ...]", "z"]


def test_hex_looking_plain_values_stay_literal() -> None:
    events, _ = _parse(["type=EXECVE msg=audit(1.0:1): argc=3 a0=ls a1=10 a2=cafe"])
    assert events[0]["process"]["args"] == ["ls", "10", "cafe"]


@pytest.mark.parametrize(
    "garbage", ["type=FOO msg=audit(x:y): z", "hello", "type=SYSCALL msg=audit(99999999999999999:1): a"]
)
def test_garbage_is_dead_lettered(garbage: str) -> None:
    good = 'type=PROCTITLE msg=audit(1451781471.394:194438): proctitle="bash"'
    dead_letter_between(good, garbage, "linux.auditd", after=good.replace("194438", "194439"))


@pytest.mark.parametrize("name", ORACLES)
def test_content_sniffing_picks_auditd(name: str) -> None:
    assert sniffed(sample(name).read_bytes()) == "linux.auditd"


@pytest.mark.parametrize("other", ["auth/test-auth.log", "syslog/test-tz-offset.log", "alb/test-alb.log"])
def test_sniff_does_not_claim_other_formats(other: str) -> None:
    assert not LOG_TYPE.sniff(sample(other).read_bytes()[:4096])


@pytest.mark.parametrize("path", ["/var/log/audit/audit.log", "/var/log/audit/audit.log.3", "host1/audit/audit.log.gz"])
def test_default_paths_route_to_auditd(path: str) -> None:
    assert routed(path) == "linux.auditd"


_SAMPLE = b"".join(sample(n).read_bytes() for n in ORACLES) + "\n".join(SUDO_EXEC).encode()


@FUZZ
@given(
    data=damaged(
        _SAMPLE,
        [b"", b"a1=" + b"41" * 40000, b"msg='" * 3000, "é".encode() * 2000, b"\x1dSADDR={ " * 100, b' a5[3]="x"'],
    )
)
def test_never_raises_on_mangled_input(data: bytes) -> None:
    events, letters = parse_bytes(data, "linux.auditd")
    assert_well_formed(events, letters, "linux.auditd")
    for doc in events:
        assert isinstance(doc["auditd"]["log"]["sequence"], int)


def test_execve_arguments_are_also_kept_by_their_audit_position() -> None:
    """Sigma's auditd rules ask `a1: '-t'`: argument 1 exactly, not "some argument"."""
    doc = _parse(SUDO_EXEC)[0][0]
    assert doc["auditd"]["execve"] == {"a0": "cat", "a1": "/etc/shadow", "a2": "/tmp/my file"}


def test_positional_arguments_keep_real_indexes_and_stop_at_32() -> None:
    gap = _parse(['type=EXECVE msg=audit(1.0:1): argc=6 a0="x" a5="y"'])[0][0]
    assert gap["auditd"]["execve"] == {"a0": "x", "a5": "y"}  # a lost argument is absent, not shifted
    many = " ".join(f'a{i}="v{i}"' for i in range(40))
    doc = _parse([f"type=EXECVE msg=audit(1.0:2): argc=40 {many}"])[0][0]
    assert len(doc["process"]["args"]) == 40
    assert doc["auditd"]["execve"]["a31"] == "v31" and "a32" not in doc["auditd"]["execve"]


@pytest.mark.parametrize(
    ("arch", "number", "name"),
    [("c000003e", "103", "syslog"), ("c000003e", "99", "sysinfo"), ("c00000b7", "279", "memfd_create")],
)
def test_raw_syscall_number_gets_its_name(arch: str, number: str, name: str) -> None:
    doc = _parse(
        [f"type=SYSCALL msg=audit(1.0:3): arch={arch} syscall={number} success=yes exit=0 a0=5 a1=0 pid=9 comm=x"]
    )[0][0]
    assert doc["auditd"]["log"]["syscall"] == number  # as logged
    assert doc["auditd"]["log"]["syscall_name"] == name
    assert doc["auditd"]["log"]["a0"] == "5"


def test_unknown_syscall_number_has_no_name_and_enriched_name_is_kept() -> None:
    unknown = _parse(["type=SYSCALL msg=audit(1.0:4): arch=c000003e syscall=999 success=yes exit=0 pid=9"])[0][0]
    assert "syscall_name" not in unknown["auditd"]["log"]
    enriched = _parse(SUDO_EXEC)[0][0]
    assert enriched["auditd"]["log"]["syscall_name"] == "execve"
