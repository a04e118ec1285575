"""The SigmaHQ corpus (../shared/sigmahq/rules, DRL 1.1) on our schema: how much of it runs, why the
rest does not, and whether a usable rule means what it says on real log lines.

"Usable" = ``Rule.runnable``: its logsource is carried by a dataset and every field it reads is
carried by that dataset's documents (siem/detect/fields.txt, generated from real samples). The
minimums below are hand-written: they may only go up. docs/sigma-mapping.md and the README's
"SigmaHQ compatibility" section show the same table.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from oracle import REPO, SHARED, parse_bytes, parse_file, sample

from siem.detect import catalog
from siem.detect.evaluate import matches
from siem.detect.rules import Rule, load_paths

CORPUS = SHARED / "sigmahq" / "rules"
GROUPS = ("AWS CloudTrail", "Kubernetes audit", "Linux auditd", "Linux builtin (syslog, auth)", "Web server / proxy")
# (total rules, usable at least): totals are the corpus as shipped; usable may only go up.
MINIMUMS = {
    "AWS CloudTrail": (57, 57),
    "Kubernetes audit": (16, 16),
    "Linux auditd": (53, 53),
    "Linux builtin (syslog, auth)": (22, 22),
    "Web server / proxy": (45, 44),
}
# Every rule that is not usable today, with the reason it is not (a new failure must be looked at).
KNOWN_UNUSABLE = {
    "proxy_hktl_cobalt_strike_malleable_c2_requests.yml": "field 'cs-cookie' is not carried",
}


def group(rule: Rule) -> str | None:
    src = rule.logsource
    product, service, category = src["product"], src["service"], src["category"]
    if product == "aws" and service == "cloudtrail":
        return "AWS CloudTrail"
    if product == "kubernetes" and service == "audit":
        return "Kubernetes audit"
    if product == "linux" and service == "auditd":
        return "Linux auditd"
    if product == "linux":
        return "Linux builtin (syslog, auth)"
    if category in ("webserver", "proxy") or product in ("nginx", "apache") or service in ("nginx", "apache"):
        return "Web server / proxy"
    return None


def reason(problem: str) -> str:
    """A problem without the rule-specific part, to count problems of one kind together."""
    problem = re.sub(r"^Sigma: ", "", problem)
    if match := re.match(r"field '([^']+)' is not carried", problem):
        return f"field {match[1]} not in our documents"
    return problem


def usability(rules: list[Rule]) -> dict[str, tuple[int, int, Counter[str]]]:
    table: dict[str, tuple[int, int, Counter[str]]] = {}
    for name in GROUPS:
        members = [r for r in rules if group(r) == name]
        reasons: Counter[str] = Counter()
        for r in members:
            if not r.runnable:
                reasons.update({reason(p) for p in r.problems})
        table[name] = (len(members), sum(r.runnable for r in members), reasons)
    return table


def table_rows(table: dict[str, tuple[int, int, Counter[str]]]) -> list[str]:
    """The Markdown rows docs/sigma-mapping.md and README.md carry."""
    rows = []
    for name, (total, usable, reasons) in table.items():
        why = "; ".join(f"{r} ({n})" for r, n in reasons.most_common(3)) or "—"
        rows.append(f"| {name} | {total} | {usable} | {100 * usable / total:.1f}% | {why} |")
    return rows


@pytest.fixture(scope="module")
def corpus() -> list[Rule]:
    rules = load_paths([CORPUS])
    assert len(rules) == 193, "the shared SigmaHQ corpus changed: review the table"
    return rules


def test_every_corpus_rule_belongs_to_a_logsource_group(corpus: list[Rule]) -> None:
    assert [r.path.name for r in corpus if group(r) is None] == []


def test_usable_rules_per_logsource_meet_the_minimums(corpus: list[Rule]) -> None:
    table = usability(corpus)
    for name, (total, minimum) in MINIMUMS.items():
        got_total, usable, reasons = table[name]
        assert got_total == total, name
        assert usable >= minimum, f"{name}: {usable} usable < {minimum}; problems: {reasons.most_common()}"


def test_goals_95_percent_cloudtrail_kubernetes_web_80_percent_auditd(corpus: list[Rule]) -> None:
    table = usability(corpus)
    ratio = {name: usable / total for name, (total, usable, _) in table.items()}
    assert ratio["Kubernetes audit"] >= 0.95
    assert ratio["Web server / proxy"] >= 0.95
    assert ratio["Linux auditd"] >= 0.80
    assert ratio["AWS CloudTrail"] >= 0.95


def test_only_the_known_rules_are_unusable_and_for_the_known_reason(corpus: list[Rule]) -> None:
    unusable = {r.path.name: r.problems for r in corpus if not r.runnable}
    assert set(unusable) <= set(KNOWN_UNUSABLE), sorted(set(unusable) - set(KNOWN_UNUSABLE))
    for name, problems in unusable.items():
        assert any(KNOWN_UNUSABLE[name] in p for p in problems), (name, problems)


def test_docs_and_readme_carry_the_current_usability_table(corpus: list[Rule]) -> None:
    rows = table_rows(usability(corpus))
    for doc in (REPO / "docs" / "sigma-mapping.md", REPO / "README.md"):
        text = doc.read_text(encoding="utf-8")
        for row in rows:
            assert row in text, f"{doc.name} lacks the row {row!r} (update the table)"


def test_committed_field_catalog_equals_a_fresh_generation() -> None:
    """Fails when a parser starts (or stops) emitting a field and fields.txt was not regenerated:
    run `.venv/bin/python -m siem.detect.catalog`."""
    assert catalog.FIELDS_FILE.read_text(encoding="utf-8") == catalog.generate()


# ------------------------------------------------------------------------------------------------
# Meaning: real (or realistic, in the original log format) lines through our parsers, then the rule.

AUDIT_EXEC = (
    "type=SYSCALL msg=audit(1700000200.000:6001): arch=c000003e syscall=59 success=yes exit=0 a0=55d0 a1=55d1 "
    "a2=55d2 a3=0 items=2 ppid=2000 pid=2001 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 "
    'egid=1000 sgid=1000 fsgid=1000 tty=pts1 ses=3 comm="{comm}" exe="/usr/bin/{comm}" key="execve"\n'
    "type=EXECVE msg=audit(1700000200.000:6001): {args}\n"
    'type=CWD msg=audit(1700000200.000:6001): cwd="/home/alice"\n'
    "type=EOE msg=audit(1700000200.000:6001): \n"
)
AUDIT_OPEN = (
    "type=SYSCALL msg=audit(1700000300.000:7001): arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c "
    "a1=7ffd a2=241 a3=1b6 items=2 ppid=1 pid=4000 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 "
    'fsgid=0 tty=pts0 ses=7 comm="tee" exe="/usr/bin/tee" key="preload"\n'
    'type=PATH msg=audit(1700000300.000:7001): item=0 name="/etc/" inode=2 dev=ca:01 mode=040755 ouid=0 ogid=0 '
    "rdev=00:00 nametype=PARENT\n"
    'type=PATH msg=audit(1700000300.000:7001): item=1 name="{name}" inode=9 dev=ca:01 mode=0100644 ouid=0 '
    "ogid=0 rdev=00:00 nametype=CREATE\n"
    "type=EOE msg=audit(1700000300.000:7001): \n"
)
AUDIT_SYSLOG_SYSCALL = (
    "type=SYSCALL msg=audit(1700000400.000:8001): arch=c000003e syscall=103 success=yes exit=0 a0={action} a1=0 "
    "a2=0 a3=0 items=0 ppid=1 pid=500 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 "
    'ses=7 comm="dmesg" exe="/usr/bin/dmesg" key="syslog"\n'
)
SERVICE_STOP = (
    "type=SERVICE_STOP msg=audit(1700000500.000:9001): pid=1 uid=0 auid=4294967295 ses=4294967295 "
    'subj=system_u:system_r:init_t:s0 msg=\'unit={unit} comm="systemd" exe="/usr/lib/systemd/systemd" '
    "hostname=? addr=? terminal=? res=success'\n"
)
ROOT_LOGIN = (
    '{{"eventVersion":"1.08","userIdentity":{{"type":"Root","principalId":"111122223333",'
    '"arn":"arn:aws:iam::111122223333:root","accountId":"111122223333"}},"eventTime":"2024-03-01T10:00:00Z",'
    '"eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1",'
    '"sourceIPAddress":"203.0.113.7","userAgent":"Mozilla/5.0","requestParameters":null,'
    '"responseElements":{{"ConsoleLogin":"Success"}},"eventID":"0b3c6d2e-1111-2222-3333-444455556666",'
    '"eventType":"{event_type}","recipientAccountId":"111122223333"}}\n'
)
PRIVILEGED_POD = (
    '{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"a1b2c3d4-0000-1111-2222-'
    '333344445555","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods","verb":"create",'
    '"user":{{"username":"alice","groups":["system:authenticated"]}},"sourceIPs":["203.0.113.9"],'
    '"objectRef":{{"resource":"pods","namespace":"default","apiVersion":"v1"}},"responseStatus":{{"code":201}},'
    '"requestObject":{{"kind":"Pod","apiVersion":"v1","metadata":{{"name":"debug"}},"spec":{{"containers":'
    '[{{"name":"debug","image":"busybox","securityContext":{security}}}]}}}},'
    '"requestReceivedTimestamp":"2024-03-01T10:00:00.000000Z","stageTimestamp":"2024-03-01T10:00:00.100000Z"}}\n'
)
NGINX = '203.0.113.50 - - [01/Mar/2024:10:00:00 +0000] "{request}" {status} 512 "{referrer}" "{agent}"\n'
ALB = (
    "https 2024-03-01T10:00:00.000000Z app/web/50dc6c495c0c9188 198.51.100.23:40000 10.0.0.1:80 0.000 0.001 "
    '0.000 200 200 34 366 "GET https://{host}:443/{path} HTTP/1.1" "Mozilla/5.0" ECDHE-RSA-AES128-GCM-SHA256 '
    "TLSv1.2 arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/web/73e2d6bc24d8a067 "
    '"Root=1-58337262-36d228ad5d99923122bbe354" "{host}" "-" 0 2024-03-01T09:59:59.999000Z "forward" "-" "-" '
    '"10.0.0.1:80" "200" "-" "-"\n'
)

# (rule file under the corpus, dataset, text that must match, near-miss text that must not)
Case = tuple[str, str, str, str]
CASES: list[Case] = [
    # Linux auditd: positional EXECVE arguments, PATH records, raw syscall numbers, SERVICE_STOP
    (
        "linux/auditd/execve/lnx_auditd_clipboard_collection.yml",
        "linux.auditd",
        AUDIT_EXEC.format(comm="xclip", args='argc=4 a0="xclip" a1="-selection" a2="clipboard" a3="-o"'),
        AUDIT_EXEC.format(comm="xclip", args='argc=4 a0="xclip" a1="-selection" a2="clipboard" a3="-i"'),
    ),
    (
        "linux/auditd/execve/lnx_auditd_binary_padding.yml",
        "linux.auditd",
        AUDIT_EXEC.format(comm="truncate", args='argc=4 a0="truncate" a1="-s" a2="+5M" a3="/usr/bin/ls"'),
        AUDIT_EXEC.format(comm="dd", args='argc=3 a0="dd" a1="if=/dev/zero" a2="of=/tmp/x"'),
    ),
    (
        "linux/auditd/path/lnx_auditd_ld_so_preload_mod.yml",
        "linux.auditd",
        AUDIT_OPEN.format(name="/etc/ld.so.preload"),
        AUDIT_OPEN.format(name="/etc/ld.so.conf"),
    ),
    (
        "linux/auditd/path/lnx_auditd_systemd_service_creation.yml",
        "linux.auditd",
        AUDIT_OPEN.format(name="/etc/systemd/system/backdoor.service"),
        AUDIT_OPEN.format(name="/etc/systemd/journald.conf"),
    ),
    (
        "linux/auditd/syscall/lnx_auditd_clean_disable_dmesg_logs_via_syslog.yml",
        "linux.auditd",
        AUDIT_SYSLOG_SYSCALL.format(action=5),  # syscall 103 on x86_64 is syslog(2); 5 = CLEAR
        AUDIT_SYSLOG_SYSCALL.format(action=3),  # 3 = READ_ALL: reading is fine
    ),
    (
        "linux/auditd/service_stop/lnx_auditd_disable_system_firewall.yml",
        "linux.auditd",
        SERVICE_STOP.format(unit="firewalld"),
        SERVICE_STOP.format(unit="cron"),
    ),
    # Linux builtin: keywords on the message, daemons scoped by program name
    (
        "linux/builtin/lnx_privileged_user_creation.yml",
        "linux.auth",
        "Dec 21 17:13:54 testserver useradd[1337]: new user: name=john, UID=0, GID=0, home=/home/john, "
        "shell=/bin/bash\n",
        "Dec 21 17:13:54 testserver useradd[1337]: new user: name=ann, UID=1001, GID=1001, home=/home/ann, "
        "shell=/bin/bash\n",
    ),
    (
        "linux/builtin/sshd/lnx_sshd_susp_ssh.yml",
        "linux.auth",
        "Mar  1 10:00:00 bastion sshd[4242]: Corrupted MAC on input. [preauth]\n",
        "Mar  1 10:00:00 bastion kernel: Corrupted MAC on input.\n",  # not sshd
    ),
    (
        "linux/builtin/cron/lnx_cron_crontab_file_modification.yml",
        "linux.syslog",
        "Mar  1 10:00:00 web1 crontab[1234]: (root) REPLACE (root)\n",
        "Mar  1 10:00:00 web1 crontab[1234]: (root) LIST (root)\n",
    ),
    (
        "linux/builtin/lnx_shellshock.yml",
        "linux.syslog",
        "Mar  1 10:00:00 web1 dhclient[77]: option: () { :; }; /bin/bash -c id\n",
        "Mar  1 10:00:00 web1 dhclient[77]: option: () { echo; }\n",
    ),
    # Web server / proxy
    (
        "web/webserver_generic/web_susp_useragents.yml",
        "nginx.access",
        NGINX.format(request="GET /login HTTP/1.1", status=200, referrer="-", agent="sqlmap/1.7.2#stable"),
        NGINX.format(request="GET /login HTTP/1.1", status=200, referrer="-", agent="Mozilla/5.0 (X11)"),
    ),
    (
        "web/webserver_generic/web_webshell_regeorg.yml",
        "nginx.access",
        NGINX.format(request="POST /tunnel.jsp?cmd=read HTTP/1.1", status=200, referrer="-", agent="-"),
        NGINX.format(request="POST /tunnel.jsp?cmd=read HTTP/1.1", status=200, referrer="-", agent="curl/8.0"),
    ),
    (
        "web/webserver_generic/web_source_code_enumeration.yml",
        "apache.access",
        NGINX.format(request="GET /.git/config HTTP/1.1", status=404, referrer="-", agent="curl/8.0"),
        NGINX.format(request="GET /gitlab/config HTTP/1.1", status=404, referrer="-", agent="curl/8.0"),
    ),
    (
        "web/proxy_generic/proxy_download_susp_dyndns.yml",
        "aws.alb",
        ALB.format(host="evil.no-ip.org", path="payload.exe"),
        ALB.format(host="evil.no-ip.org", path="payload.txt"),
    ),
    (
        "web/product/apache/web_apache_segfault.yml",
        "apache.error",
        "[Fri Mar 01 10:00:00.123456 2024] [core:notice] [pid 1000] AH00052: child pid 4242 exit signal "
        "Segmentation fault (11)\n",
        "[Fri Mar 01 10:00:00.123456 2024] [core:notice] [pid 1000] AH00051: child pid 4242 exit signal "
        "Aborted (6), possible coredump in /tmp\n",
    ),
    # CloudTrail and Kubernetes: hand-written where the shared samples have no such event
    (
        "cloud/aws/cloudtrail/aws_root_account_usage.yml",
        "aws.cloudtrail",
        ROOT_LOGIN.format(event_type="AwsConsoleSignIn"),
        ROOT_LOGIN.format(event_type="AwsServiceEvent"),
    ),
    (
        "application/kubernetes/audit/kubernetes_audit_privileged_pod_creation.yml",
        "kubernetes.audit",
        PRIVILEGED_POD.format(security='{"capabilities":{"add":["SYS_ADMIN"]}}'),
        PRIVILEGED_POD.format(security='{"runAsNonRoot":true}'),
    ),
]
# (rule file, real sample, indexes of its events that must match; every other event must not)
SAMPLE_CASES: list[tuple[str, str, set[int]]] = [
    ("cloud/aws/cloudtrail/aws_cloudtrail_disable_logging.yml", "cloudtrail/test-delete-trail-json.log", {0}),
    ("cloud/aws/cloudtrail/aws_cloudtrail_disable_logging.yml", "cloudtrail/test-create-trail-json.log", set()),
    (
        "cloud/aws/cloudtrail/aws_cloudtrail_console_login_success_without_mfa.yml",
        "cloudtrail/test-console-login-json.log",
        {0},
    ),
    (
        "cloud/aws/cloudtrail/aws_cloudtrail_console_login_failed_authentication.yml",
        "cloudtrail/test-console-login-json.log",
        {1, 2},
    ),
    ("cloud/aws/cloudtrail/aws_update_login_profile.yml", "cloudtrail/test-update-login-profile-json.log", {0}),
    ("application/kubernetes/audit/kubernetes_audit_exec_into_container.yml", "k8s_audit/exec_pod.json", {0}),
    ("application/kubernetes/audit/kubernetes_audit_exec_into_container.yml", "k8s_audit/attach_pod.json", set()),
    (
        "application/kubernetes/audit/kubernetes_audit_hostpath_mount.yml",
        "k8s_audit/create_nginx_pod_sensitive_mount.json",
        {0},
    ),
    (
        "application/kubernetes/audit/kubernetes_audit_hostpath_mount.yml",
        "k8s_audit/create_nginx_pod_unprivileged.json",
        set(),
    ),
    (
        "application/kubernetes/audit/kubernetes_audit_secrets_modified_or_deleted.yml",
        "k8s_audit/delete_secret.json",
        {0},
    ),
    (
        "application/kubernetes/audit/kubernetes_audit_secrets_modified_or_deleted.yml",
        "k8s_audit/delete_configmap.json",
        set(),
    ),
]


def corpus_rule(relative: str) -> Rule:
    (rule,) = load_paths([CORPUS / relative])
    assert rule.runnable, rule.problems
    return rule


def one_event(text: str, dataset: str) -> dict[str, Any]:
    events, letters = parse_bytes(text.encode(), dataset)
    assert not letters and len(events) == 1, ([d.reason for d in letters], len(events))
    assert events[0]["event"]["dataset"] == dataset
    return events[0]


@pytest.mark.parametrize(("relative", "dataset", "hit", "miss"), CASES, ids=[Path(c[0]).stem for c in CASES])
def test_sigmahq_rule_matches_its_attack_line_and_not_the_near_miss(
    relative: str, dataset: str, hit: str, miss: str
) -> None:
    rule = corpus_rule(relative)
    assert matches(rule.condition, one_event(hit, dataset)) is True
    assert matches(rule.condition, one_event(miss, dataset)) is False


@pytest.mark.parametrize(
    ("relative", "name", "hits"), SAMPLE_CASES, ids=[f"{Path(c[0]).stem}-{Path(c[1]).stem}" for c in SAMPLE_CASES]
)
def test_sigmahq_rule_on_real_samples_matches_exactly_the_expected_events(
    relative: str, name: str, hits: set[int]
) -> None:
    rule = corpus_rule(relative)
    events, _ = parse_file(sample(name))
    assert events
    assert {i for i, doc in enumerate(events) if matches(rule.condition, doc)} == hits


def test_a_rule_never_matches_another_dataset_with_the_same_field_names() -> None:
    # the webserver user-agent rule, on a CloudTrail event whose user agent is sqlmap: not a web log
    rule = corpus_rule("web/webserver_generic/web_susp_useragents.yml")
    doc = one_event(
        ROOT_LOGIN.format(event_type="AwsConsoleSignIn").replace("Mozilla/5.0", "sqlmap/1.7"), "aws.cloudtrail"
    )
    assert doc["user_agent"]["original"] == "sqlmap/1.7"
    assert matches(rule.condition, doc) is False
