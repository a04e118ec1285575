"""Linux authentication logs (/var/log/auth.log, /var/log/secure): sshd, sudo, su, PAM, user admin.

Headers are plain syslog (see _syslog_common); the value is in the message, which is mapped onto
the fields an analyst pivots on: user.name (the human), user.effective.name (the account they
became), source.ip/port (where they came from), event.outcome. Message rules follow Elastic's
``system.auth`` pipeline (its field names under ``system.auth.*`` are kept), with the additions
listed in docs/log-types/linux.auth.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from siem.formats._syslog_common import header_fields, parse_header, sniff_headers, syslog_records
from siem.formats.base import BadRecord, ParseOptions, Record, Skipped
from siem.normalize import valid_ip

_SSH_AUTH = re.compile(
    r"(?P<event>Accepted|Failed|Postponed|Partial) (?P<method>\S+) for (?:(?:invalid|illegal) user )?(?P<user>.*?)"
    r" from (?P<addr>\S+) port (?P<port>\d{1,5})(?: ssh2)?(?:: (?P<sig>.*?))?(?: \[preauth\])?$",
    re.S,
)
_SSH_INVALID = re.compile(
    r"(?P<event>Invalid|Illegal) user (?P<user>.*?) from (?P<addr>\S+?)(?: port (?P<port>\d{1,5}))?\s*$"
)
_SSH_DROPPED = re.compile(r"Did not receive identification string from (?P<addr>\S+?)(?: port (?P<port>\d{1,5}))?\s*$")
_SSH_CLOSED = re.compile(
    r"(?P<event>Connection closed|Disconnected|Connection reset|Received disconnect|Disconnecting)(?: by| from)?"
    r"(?: (?:(?:invalid|authenticating) )?user (?P<user>\S+))? (?P<addr>[0-9A-Fa-f:.]+)(?: port (?P<port>\d{1,5}))?"
)
# Elastic's catch-all "<text> user <name> from <host>" (e.g. PAM "... for illegal user test from host").
_USER_FROM = re.compile(r".*? user (?P<user>\S+) from (?P<addr>[0-9A-Za-z][\w.:%-]*)")
_SUDO = re.compile(r"\s*(?P<user>\S+) : (?P<rest>.*?COMMAND=.*)$", re.S)
_SUDO_KV = re.compile(r"([A-Z_]+)=(.*)$", re.S)
_NEW_GROUP = re.compile(r"new group: name=(?P<name>[^,]*), GID=(?P<gid>\d+)")
_NEW_USER = re.compile(
    r"new user: name=(?P<name>[^,]*), UID=(?P<uid>\d+), GID=(?P<gid>\d+), home=(?P<home>[^,]*), shell=(?P<shell>[^,]*)"
)
_GROUP_ADDED = re.compile(r"group added to \S+: name=(?P<name>[^,\s]+)(?:, GID=(?P<gid>\d+))?")
_SU = re.compile(r"(?P<result>Successful|FAILED) su for (?P<target>\S+) by (?P<user>\S+)")
_USERMOD_GROUP = re.compile(r"add '(?P<user>[^']+)' to (?:shadow )?group '(?P<group>[^']+)'")
_GPASSWD = re.compile(r"user (?P<target>\S+) (?P<action>added|removed) by (?P<by>\S+) (?:to|from) group (?P<group>.+)$")
_PAM_FOR_BY = re.compile(
    r"for user ['\"]?(?P<for>.*?)['\"]?(?:\(uid=\d+\))? by ['\"]?(?P<by>.*?)['\"]?(?:\(uid=(?P<uid>\d+)\))?$"
)
_PAM_FOR = re.compile(r"for user ['\"]?(?P<for>.*?)['\"]?(?:\(uid=\d+\))?$")
_PAM_BY = re.compile(r"by user ['\"]?(?P<by>.*?)['\"]?$")
_QUOTED_USER = re.compile(r"(?<! ) user ['\"](?P<user>.*?)['\"]")
_PAM_CATEGORY = re.compile(r"pam_unix\([^:)]*:(?P<category>\w+)\)")
_PAM_RHOST = re.compile(r"rhost=(?P<rhost>\S*)\s*(?:user=(?P<user>\S+))?\s*$")
_PASSWORD_CHANGED = re.compile(r"password changed for (?P<user>\S+)$")

MAX_ANALYSED_MESSAGE = 16 * 1024
_IAM_TYPES = {
    "useradd": ("user", "creation"),
    "userdel": ("user", "deletion"),
    "usermod": ("user", "change"),
    "groupadd": ("group", "creation"),
    "groupdel": ("group", "deletion"),
    "groupmod": ("group", "change"),
}
# Programs whose lines make a file an auth log when content sniffing (auth.log / secure).
_AUTH_PROGRAMS = frozenset(
    {
        "sshd", "sudo", "su", "login", "passwd", "chage", "chfn", "chsh", "gpasswd", "pkexec", "polkitd",
        "systemd-logind", "unix_chkpwd", "pam", "useradd", "userdel", "usermod", "groupadd", "groupdel", "groupmod",
    }
)  # fmt: skip


def _set_source(doc: dict[str, Any], addr: str, port: str | None = None) -> None:
    """An IP goes to source.ip; a host name to source.domain (never into an *.ip field)."""
    addr = addr.rstrip(":")
    source: dict[str, Any] = {"address": addr}
    ip = valid_ip(addr)
    if ip:
        source["ip"] = ip
    else:
        source["domain"] = addr
    if port:
        source["port"] = int(port)
    doc["source"] = source


def _auth(doc: dict[str, Any]) -> dict[str, Any]:
    return doc.setdefault("system", {}).setdefault("auth", {})


def _ssh_peer(doc: dict[str, Any], match: re.Match[str], ssh: dict[str, Any]) -> None:
    """system.auth.ssh, and the user and address (with port) that an sshd message names."""
    _auth(doc)["ssh"] = ssh
    if match["user"]:
        doc["user"] = {"name": match["user"]}
    _set_source(doc, match["addr"], match["port"])


def _sshd(msg: str, doc: dict[str, Any], event: dict[str, Any]) -> bool:
    match = _SSH_AUTH.match(msg)
    if match:
        ssh: dict[str, Any] = {"event": match["event"], "method": match["method"]}
        if match["sig"]:
            ssh["signature"] = match["sig"]
        _ssh_peer(doc, match, ssh)
        if match["event"] == "Accepted":
            event.update(action="ssh_login", category=["authentication", "session"], type=["info"], outcome="success")
        elif match["event"] == "Failed":
            event.update(action="ssh_login", category=["authentication"], type=["info"], outcome="failure")
        return True
    match = _SSH_INVALID.match(msg)
    if match:
        _ssh_peer(doc, match, {"event": match["event"]})
        event.update(action="ssh_login", category=["authentication"], type=["info"], outcome="failure")
        return True
    match = _SSH_DROPPED.match(msg)
    if match:
        ip = valid_ip(match["addr"])
        if ip:
            _auth(doc)["ssh"] = {"dropped_ip": ip}
            doc["source"] = {"ip": ip}
            if match["port"]:
                doc["source"]["port"] = int(match["port"])
        return True
    match = _SSH_CLOSED.match(msg)
    if match and valid_ip(match["addr"].rstrip(":")):
        _ssh_peer(doc, match, {"event": match["event"]})
        return False  # the message may still name a PAM user; nothing above consumed it
    match = _USER_FROM.match(msg)
    if match and match["user"]:
        doc["user"] = {"name": match["user"]}
        _set_source(doc, match["addr"])
        return True
    return False


def _sudo(msg: str, doc: dict[str, Any], event: dict[str, Any]) -> bool:
    match = _SUDO.match(msg)
    if match is None:
        return False
    head, _, command = match["rest"].partition("COMMAND=")
    sudo: dict[str, Any] = {}
    errors = []
    for item in head.split(" ; "):
        item = item.strip(" ;")
        if not item:
            continue
        kv = _SUDO_KV.match(item)
        if kv:
            sudo[kv[1].lower()] = kv[2]
        else:
            errors.append(item)
    sudo["command"] = command
    if errors:
        sudo["error"] = " ; ".join(errors)
    _auth(doc)["sudo"] = sudo
    user: dict[str, Any] = {"name": match["user"]}
    if sudo.get("user"):
        user["effective"] = {"name": sudo["user"]}
    doc["user"] = user
    event.update(category=["process"], type=["start"], outcome="failure" if errors else "success")
    return True


def _accounts(msg: str, doc: dict[str, Any], event: dict[str, Any]) -> bool:
    match = _NEW_GROUP.match(msg) or _GROUP_ADDED.match(msg)
    if match:
        doc["group"] = {"name": match["name"]}
        if match["gid"]:
            doc["group"]["id"] = match["gid"]
        return True
    match = _NEW_USER.match(msg)
    if match:
        doc["user"] = {"name": match["name"], "id": match["uid"]}
        doc["group"] = {"id": match["gid"]}
        _auth(doc)["useradd"] = {"home": match["home"], "shell": match["shell"]}
        return True
    match = _USERMOD_GROUP.match(msg)
    if match:
        doc["user"] = {"name": match["user"]}
        doc["group"] = {"name": match["group"]}
        event["action"] = "group-member-added"
        return True
    match = _GPASSWD.search(msg)
    if match:
        doc["user"] = {"name": match["by"], "target": {"name": match["target"]}}
        doc["group"] = {"name": match["group"]}
        event.update(
            action=f"group-user-{match['action']}", category=["iam"], type=["group", "change"], outcome="success"
        )
        return True
    match = _SU.match(msg)
    if match:
        doc["user"] = {"name": match["user"], "effective": {"name": match["target"]}}
        ok = match["result"] == "Successful"
        event.update(category=["authentication"], type=["info"], outcome="success" if ok else "failure")
        return True
    return False


def _pam(msg: str, doc: dict[str, Any], event: dict[str, Any]) -> None:
    """Users and category from free-text (mostly PAM) messages, as Elastic's pam grok does."""
    user: dict[str, Any] = doc.get("user") or {}
    match = _PAM_FOR_BY.search(msg)
    if match:
        if match["by"]:
            user["name"] = match["by"]
            if match["uid"]:
                user["id"] = match["uid"]
            user["effective"] = {"name": match["for"]}
        elif match["for"]:
            user["name"] = match["for"]
    elif match := _PAM_FOR.search(msg):
        if match["for"]:
            user.setdefault("name", match["for"])
    elif match := _PAM_BY.search(msg):
        if match["by"]:
            user["name"] = match["by"]
    elif (match := _QUOTED_USER.search(msg)) and match["user"]:
        user.setdefault("name", match["user"])
    if "rhost=" in msg and (match := _PAM_RHOST.search(msg)):
        if match["user"]:
            user.setdefault("name", match["user"])
        if match["rhost"] and "source" not in doc:
            _set_source(doc, match["rhost"])
    category = _PAM_CATEGORY.match(msg)
    kind = category["category"] if category else None
    if kind == "session":
        event["category"] = ["session"]
    elif kind == "auth":
        event["category"] = ["authentication"]
    elif kind == "chauthtok" and (match := _PASSWORD_CHANGED.search(msg)):
        user.setdefault("name", match["user"])
        user["target"] = {"name": match["user"]}
        event.update(action="password-changed", category=["iam"], type=["user", "change"], outcome="success")
    if "authentication failure" in msg or (kind == "auth" and "user unknown" in msg):
        event.update(category=["authentication"], type=["info"], outcome="failure", action="authentication_failure")
    elif "session opened" in msg:
        event.update(action="logged-on", type=["start"])
    elif "session closed" in msg:
        event.update(action="logged-off", type=["end"])
    if "category" in event:  # ECS: a category always comes with a type
        event.setdefault("type", ["info"])
    if user:
        doc["user"] = user


def _iam(program: str | None, msg: str, event: dict[str, Any]) -> None:
    """useradd/groupadd & co.: every line is an IAM change; "fail" in it means it did not happen."""
    types = _IAM_TYPES.get(program or "")
    if types is None:
        return
    category = event.setdefault("category", [])
    if "iam" not in category:
        category.append("iam")
    event["type"] = [*types]
    event["outcome"] = "failure" if "fail" in msg else "success"


class AuthLogType:
    dataset = "linux.auth"
    description = "Linux auth.log / secure: sshd logins, sudo, su, PAM sessions, user and group administration"
    # /var/log/auth.log, /var/log/secure and their rotations (.1, .2.gz, -20240101, -20240101.gz).
    key_pattern = re.compile(r"(?:^|/)(?:auth\.log|secure)(?:\.\d+|-\d{8})?(?:\.gz)?$")

    def sniff(self, head: bytes) -> bool:
        """Syslog whose lines are mostly written by authentication programs (or mention PAM)."""
        headers = sniff_headers(head)
        if not headers:
            return False
        auth = sum(1 for h in headers if h.program in _AUTH_PROGRAMS or "pam_" in h.message)
        return auth * 2 >= len(headers)

    def records(self, stream: BinaryIO, options: ParseOptions) -> Iterator[Record | BadRecord | Skipped]:
        return syslog_records(stream)

    def to_ecs(self, raw: str, options: ParseOptions) -> dict[str, Any]:
        header = parse_header(raw, options)
        doc = header_fields(header)
        event: dict[str, Any] = {"kind": "event"}
        doc["event"] = event
        msg = header.message
        # Authentication messages are short (sudo splits long commands into "command continued"
        # lines); a longer one is kept as the message only, so no pattern can go quadratic on it.
        if len(msg) <= MAX_ANALYSED_MESSAGE:
            if not (_sshd(msg, doc, event) or _sudo(msg, doc, event) or _accounts(msg, doc, event)):
                _pam(msg, doc, event)
            _iam(header.program, msg, event)
        return doc


LOG_TYPE = AuthLogType()
