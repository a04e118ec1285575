"""Every visualization of the dashboards, grouped by the dashboard that shows it first.

A panel is one ``Vis``: what it counts, split by which fields, over which filters. Shared filters
(a dataset, "WAF blocks", "human Kubernetes users") are named once here so that the overview and
the per-source dashboards cannot drift apart.
"""

from __future__ import annotations

from siem.dashboards.model import (
    ALERTS,
    DEADLETTER,
    Vis,
    between,
    distinct,
    exists,
    grid,
    is_,
    not_,
    one_of,
    over_time,
    ranges,
    starts_with,
    top,
    total,
)

WEB = ("aws.alb", "aws.waf", "nginx.access", "apache.access")
# CloudTrail calls an intruder makes to persist, escalate, hide or expose data (IAM users and keys,
# policies, MFA, the trail itself, KMS keys, public buckets, open security groups).
SENSITIVE_ACTIONS = (
    "ConsoleLogin",
    "CreateUser",
    "DeleteUser",
    "CreateAccessKey",
    "UpdateAccessKey",
    "DeleteAccessKey",
    "CreateLoginProfile",
    "UpdateLoginProfile",
    "AddUserToGroup",
    "AttachUserPolicy",
    "AttachRolePolicy",
    "PutUserPolicy",
    "PutRolePolicy",
    "UpdateAssumeRolePolicy",
    "DeactivateMFADevice",
    "DeleteVirtualMFADevice",
    "UpdateAccountPasswordPolicy",
    "StopLogging",
    "DeleteTrail",
    "UpdateTrail",
    "PutEventSelectors",
    "DisableKey",
    "ScheduleKeyDeletion",
    "PutBucketPolicy",
    "PutBucketAcl",
    "DeleteBucket",
    "AuthorizeSecurityGroupIngress",
    "CreateKeyPair",
)

CLOUDTRAIL = is_("event.dataset", "aws.cloudtrail")
K8S = is_("event.dataset", "kubernetes.audit")
AUTH = is_("event.dataset", "linux.auth")
AUDITD = is_("event.dataset", "linux.auditd")
VPCFLOW = is_("event.dataset", "aws.vpcflow")
DNS = is_("event.dataset", "aws.route53_resolver")
WAF_BLOCK = (is_("event.dataset", "aws.waf"), is_("aws.waf.action", "BLOCK"))
HUMAN_K8S = (K8S, not_(starts_with("user.name", "system:", "system: accounts")))
SSH_FAILED = (AUTH, one_of("system.auth.ssh.event", "Failed", "Invalid"))
STATUS = ranges("http.response.status_code", (200, 300, "2xx"), (300, 400, "3xx"), (400, 500, "4xx"), (500, 600, "5xx"))
ERRORS = ranges("http.response.status_code", (400, 500, "4xx"), (500, 600, "5xx"), label="HTTP errors")

VISUALIZATIONS = (
    # SOC overview
    Vis("siem-vis-events-by-dataset", "Events by dataset", "bars", (over_time(), top("event.dataset", 25))),
    Vis("siem-vis-top-source-ips", "Top source IPs", "table", (top("source.ip", 15, "Source IP"),)),
    Vis("siem-vis-top-users", "Top users", "table", (top("user.name", 15, "User"),)),
    Vis("siem-vis-http-errors", "HTTP 4xx and 5xx over time", "bars", (over_time(), ERRORS)),
    Vis(
        "siem-vis-waf-blocks",
        "WAF blocks by rule and client IP",
        "table",
        (top("aws.waf.terminating_rule_id", 10, "Rule"), top("source.ip", 10, "Client IP")),
        filters=WAF_BLOCK,
    ),
    Vis(
        "siem-vis-cloudtrail-errors",
        "CloudTrail errors",
        "table",
        (top("error.code", 10, "Error"), top("event.action", 10, "API call")),
        filters=(CLOUDTRAIL, exists("error.code")),
    ),
    Vis(
        "siem-vis-cloudtrail-sensitive",
        "CloudTrail sensitive actions",
        "table",
        (top("event.action", 30, "API call"), top("user.name", 10, "User")),
        filters=(CLOUDTRAIL, one_of("event.action", *SENSITIVE_ACTIONS)),
        description="IAM, MFA, trail, KMS, bucket-policy and security-group changes (siem/dashboards/spec.py).",
    ),
    Vis(
        "siem-vis-eks-human-users",
        "EKS audit by human users",
        "table",
        (top("user.name", 10, "User"), top("kubernetes.audit.verb", 10, "Verb")),
        filters=HUMAN_K8S,
        description="Kubernetes API calls by users whose name does not start with system: (nodes, controllers).",
    ),
    Vis(
        "siem-vis-ssh-failures",
        "SSH failures by source IP and user",
        "table",
        (top("source.ip", 10, "Source IP"), top("user.name", 10, "User")),
        filters=SSH_FAILED,
    ),
    Vis("siem-vis-source-map", "Sources on the map (GeoIP)", "map", (grid("source.geo.location"),)),
    Vis("siem-vis-source-countries", "Source countries", "table", (top("source.geo.country_iso_code", 15, "Country"),)),
    Vis("siem-vis-source-networks", "Source networks (ASN)", "table", (top("source.as.organization.name", 15, "AS"),)),
    Vis(
        "siem-vis-dead-letters",
        "Dead letters by dataset and stage",
        "table",
        (top("dataset", 20, "Dataset"), top("stage", 5, "Stage")),
        pattern=DEADLETTER,
    ),
    # ALB, WAF and web servers
    Vis(
        "siem-vis-web-requests",
        "Web requests by dataset",
        "bars",
        (over_time(), top("event.dataset", 5)),
        filters=(one_of("event.dataset", *WEB),),
    ),
    Vis(
        "siem-vis-web-status",
        "HTTP status classes",
        "bars",
        (over_time(), STATUS),
        filters=(one_of("event.dataset", *WEB),),
    ),
    Vis(
        "siem-vis-web-paths",
        "Top URL paths",
        "table",
        (top("url.path", 20, "Path"),),
        filters=(one_of("event.dataset", *WEB),),
    ),
    Vis(
        "siem-vis-web-error-clients",
        "Clients getting 4xx/5xx",
        "table",
        (top("source.ip", 15, "Client IP"), top("http.response.status_code", 5, "Status")),
        filters=(one_of("event.dataset", *WEB), between("http.response.status_code", 400, 600)),
    ),
    Vis(
        "siem-vis-web-methods",
        "HTTP methods",
        "pie",
        (top("http.request.method", 10),),
        filters=(one_of("event.dataset", *WEB),),
    ),
    Vis(
        "siem-vis-web-agents",
        "Top user agents",
        "table",
        (top("user_agent.original", 15, "User agent"),),
        filters=(one_of("event.dataset", *WEB),),
    ),
    Vis(
        "siem-vis-web-bytes",
        "Response bytes by client",
        "table",
        (top("source.ip", 15, "Client IP"),),
        metric=total("http.response.body.bytes", "Response bytes"),
        filters=(one_of("event.dataset", *WEB), exists("http.response.body.bytes")),
    ),
    Vis(
        "siem-vis-waf-actions",
        "WAF actions",
        "bars",
        (over_time(), top("aws.waf.action", 5)),
        filters=(is_("event.dataset", "aws.waf"),),
    ),
    Vis(
        "siem-vis-waf-block-paths",
        "WAF blocks by rule and URI",
        "table",
        (top("aws.waf.terminating_rule_id", 10, "Rule"), top("url.path", 10, "URI")),
        filters=WAF_BLOCK,
    ),
    # CloudTrail
    Vis(
        "siem-vis-ct-providers",
        "CloudTrail calls by service",
        "bars",
        (over_time(), top("event.provider", 15)),
        filters=(CLOUDTRAIL,),
    ),
    Vis(
        "siem-vis-ct-actions",
        "Top API calls",
        "table",
        (top("event.action", 20, "API call"), top("event.outcome", 2, "Outcome")),
        filters=(CLOUDTRAIL,),
    ),
    Vis(
        "siem-vis-ct-users",
        "Top identities and their IPs",
        "table",
        (top("user.name", 15, "User"), top("source.ip", 5, "Source IP")),
        filters=(CLOUDTRAIL,),
    ),
    Vis("siem-vis-ct-outcome", "Outcome", "pie", (top("event.outcome", 2),), filters=(CLOUDTRAIL,)),
    Vis(
        "siem-vis-ct-console-logins",
        "Console logins",
        "table",
        (top("user.name", 15, "User"), top("event.outcome", 2, "Outcome"), top("source.ip", 5, "Source IP")),
        filters=(CLOUDTRAIL, is_("event.action", "ConsoleLogin")),
    ),
    Vis(
        "siem-vis-ct-accounts",
        "Accounts and regions",
        "table",
        (top("cloud.account.id", 20, "Account"), top("cloud.region", 10, "Region")),
        filters=(CLOUDTRAIL,),
    ),
    # EKS / Kubernetes audit
    Vis(
        "siem-vis-k8s-verbs",
        "API verbs over time",
        "bars",
        (over_time(), top("kubernetes.audit.verb", 10)),
        filters=(K8S,),
    ),
    Vis(
        "siem-vis-k8s-resources",
        "Resources by verb",
        "table",
        (top("kubernetes.audit.objectRef.resource", 20, "Resource"), top("kubernetes.audit.verb", 10, "Verb")),
        filters=(K8S,),
    ),
    Vis(
        "siem-vis-k8s-namespaces",
        "Namespaces",
        "pie",
        (top("kubernetes.audit.objectRef.namespace", 15),),
        filters=(K8S,),
    ),
    Vis(
        "siem-vis-k8s-exec",
        "exec / attach into pods",
        "table",
        (top("user.name", 10, "User"), top("kubernetes.audit.objectRef.name", 10, "Pod")),
        filters=(K8S, one_of("kubernetes.audit.objectRef.subresource", "exec", "attach")),
    ),
    Vis(
        "siem-vis-k8s-anonymous",
        "Anonymous requests",
        "table",
        (top("kubernetes.audit.verb", 10, "Verb"), top("kubernetes.audit.objectRef.resource", 10, "Resource")),
        filters=(K8S, is_("user.name", "system:anonymous")),
    ),
    Vis("siem-vis-k8s-status", "Response codes", "pie", (top("http.response.status_code", 10),), filters=(K8S,)),
    # Linux auth.log and auditd
    Vis(
        "siem-vis-auth-outcome",
        "Authentication outcome over time",
        "bars",
        (over_time(), top("event.outcome", 2)),
        filters=(AUTH,),
    ),
    Vis(
        "siem-vis-ssh-accepted",
        "SSH logins accepted",
        "table",
        (top("user.name", 10, "User"), top("source.ip", 10, "Source IP"), top("system.auth.ssh.method", 3, "Method")),
        filters=(AUTH, is_("system.auth.ssh.event", "Accepted")),
    ),
    Vis(
        "siem-vis-sudo",
        "sudo commands",
        "table",
        (top("user.name", 10, "User"), top("system.auth.sudo.command", 20, "Command")),
        filters=(AUTH, exists("system.auth.sudo.command")),
    ),
    Vis(
        "siem-vis-auth-hosts",
        "Hosts",
        "table",
        (top("host.hostname", 20, "Host"), top("event.outcome", 2, "Outcome")),
        filters=(AUTH,),
    ),
    Vis(
        "siem-vis-auditd-actions",
        "auditd actions over time",
        "bars",
        (over_time(), top("event.action", 15)),
        filters=(AUDITD,),
    ),
    Vis(
        "siem-vis-auditd-executables",
        "Executables by user",
        "table",
        (top("process.executable", 20, "Executable"), top("user.name", 5, "User")),
        filters=(AUDITD,),
    ),
    Vis(
        "siem-vis-auditd-commands",
        "Command lines",
        "table",
        (top("process.command_line", 20, "Command line"),),
        filters=(AUDITD, exists("process.command_line")),
    ),
    # VPC flow, Route 53 Resolver, Network Firewall
    Vis(
        "siem-vis-flow-actions",
        "VPC flow accept / reject",
        "bars",
        (over_time(), top("aws.vpcflow.action", 2)),
        filters=(VPCFLOW,),
    ),
    Vis(
        "siem-vis-flow-talkers",
        "Top talkers (bytes)",
        "table",
        (top("source.ip", 15, "Source IP"),),
        metric=total("source.bytes", "Bytes sent"),
        filters=(VPCFLOW,),
    ),
    Vis(
        "siem-vis-flow-rejected",
        "Rejected flows",
        "table",
        (top("source.ip", 15, "Source IP"), top("destination.port", 10, "Port")),
        filters=(VPCFLOW, is_("aws.vpcflow.action", "REJECT")),
    ),
    Vis(
        "siem-vis-flow-ports",
        "Destination ports",
        "table",
        (top("destination.port", 20, "Port"), top("network.transport", 3, "Transport")),
        filters=(VPCFLOW,),
    ),
    Vis(
        "siem-vis-dns-queries",
        "Top DNS questions",
        "table",
        (top("dns.question.name", 20, "Question"),),
        filters=(DNS,),
    ),
    Vis("siem-vis-dns-rcodes", "DNS response codes", "pie", (top("dns.response_code", 10),), filters=(DNS,)),
    Vis(
        "siem-vis-dns-clients",
        "DNS clients",
        "table",
        (top("source.ip", 15, "Client IP"),),
        metric=distinct("dns.question.name", "Distinct questions"),
        filters=(DNS,),
    ),
    Vis(
        "siem-vis-firewall",
        "Network Firewall actions by rule",
        "table",
        (top("event.action", 5, "Action"), top("rule.name", 15, "Rule"), top("source.ip", 10, "Source IP")),
        filters=(is_("event.dataset", "aws.network_firewall"), exists("rule.name")),
    ),
    # Alerts
    Vis("siem-vis-alerts-over-time", "Alerts by severity", "bars", (over_time(), top("rule.level", 5)), pattern=ALERTS),
    Vis(
        "siem-vis-alerts-by-rule",
        "Alerts by rule",
        "table",
        (top("rule.name", 30, "Rule"), top("rule.level", 1, "Level")),
        pattern=ALERTS,
    ),
    Vis("siem-vis-alerts-severity", "Severity", "pie", (top("rule.level", 5),), pattern=ALERTS),
    Vis("siem-vis-alerts-status", "Status", "pie", (top("alert.status", 3),), pattern=ALERTS),
    Vis("siem-vis-alerts-ips", "Alerts by IP", "table", (top("related.ip", 15, "IP"),), pattern=ALERTS),
    Vis("siem-vis-alerts-users", "Alerts by user", "table", (top("related.user", 15, "User"),), pattern=ALERTS),
    Vis("siem-vis-alerts-tactics", "ATT&CK tactics", "tagcloud", (top("threat.tactic.name", 14),), pattern=ALERTS),
    Vis("siem-vis-alerts-open", "Open alerts", "metric", filters=(is_("alert.status", "open"),), pattern=ALERTS),
)
