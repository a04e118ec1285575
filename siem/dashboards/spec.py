"""What the SOC sees in OpenSearch Dashboards: index patterns, saved searches, dashboards (panels: panels.py).

Edit this file or panels.py, then run ``python -m siem.dashboards.build`` to regenerate ``dashboards/siem.ndjson``
(a test fails while the two disagree). Every field named here must exist in ``index_templates/``
with an aggregatable type where it is aggregated, every filter must validate on OpenSearch and every
panel must show data on the bundled samples: ``tests/test_dashboards_*.py`` check all three.
"""

from __future__ import annotations

from siem.dashboards.model import ALERTS, DEADLETTER, EVENTS, Dashboard, IndexPattern, Search, any_case, is_
from siem.dashboards.panels import VISUALIZATIONS

__all__ = ["DASHBOARDS", "INDEX_PATTERNS", "SEARCHES", "VISUALIZATIONS"]

_IP = {"id": "ip"}
_BYTES = {"id": "bytes"}
INDEX_PATTERNS = (
    IndexPattern(
        EVENTS,
        "siem-events-*",
        "@timestamp",
        {
            **dict.fromkeys(
                ("source.ip", "destination.ip", "client.ip", "server.ip", "host.ip", "related.ip", "dns.resolved_ip"),
                _IP,
            ),
            **dict.fromkeys(
                (
                    "source.bytes",
                    "destination.bytes",
                    "http.request.bytes",
                    "http.response.bytes",
                    "http.request.body.bytes",
                    "http.response.body.bytes",
                ),
                _BYTES,
            ),
            "url.original": {"id": "url", "params": {"type": "a", "urlTemplate": "", "labelTemplate": ""}},
        },
    ),
    IndexPattern(
        ALERTS, "siem-alerts", "@timestamp", dict.fromkeys(("source.ip", "destination.ip", "related.ip"), _IP)
    ),
    IndexPattern(DEADLETTER, "siem-deadletter", "@timestamp"),
)

_TIMELINE = (
    "event.dataset",
    "event.action",
    "event.outcome",
    "source.ip",
    "destination.ip",
    "user.name",
    "host.hostname",
    "url.original",
    "log.file.path",
)
SEARCHES = (
    Search(
        "siem-search-ip",
        "Everything about an IP",
        _TIMELINE,
        (is_("related.ip", "192.0.2.1"),),
        description=(
            "Edit the related.ip filter (an address or a CIDR such as 10.0.0.0/8): "
            "every event of every dataset that names it."
        ),
    ),
    Search(
        "siem-search-user",
        "Everything about a user",
        _TIMELINE,
        (any_case("related.user", "change-me", "user: change-me (any case): edit this filter"),),
        description="Edit the filter's value (Edit as Query DSL): every event naming that user, whatever the case.",
    ),
    Search(
        "siem-search-open-alerts",
        "Open alerts",
        ("rule.name", "rule.level", "alert.reason", "related.ip", "related.user", "alert.count", "alert.last_seen"),
        (is_("alert.status", "open"),),
        pattern=ALERTS,
    ),
    Search(
        "siem-search-dead-letters", "Dead letters", ("dataset", "stage", "reason", "path", "offset"), pattern=DEADLETTER
    ),
)

DASHBOARDS = (
    Dashboard(
        "siem-dash-soc-overview",
        "SIEM: SOC overview",
        "Every source at a glance: volume, who, web errors, WAF blocks, CloudTrail, EKS, SSH, alerts' raw material.",
        (
            "siem-vis-events-by-dataset",
            "siem-vis-top-source-ips",
            "siem-vis-top-users",
            "siem-vis-http-errors",
            "siem-vis-waf-blocks",
            "siem-vis-cloudtrail-errors",
            "siem-vis-cloudtrail-sensitive",
            "siem-vis-eks-human-users",
            "siem-vis-ssh-failures",
            "siem-vis-source-map",
            "siem-vis-source-countries",
            "siem-vis-source-networks",
            "siem-vis-dead-letters",
        ),
        time_from="now-24h",
    ),
    Dashboard(
        "siem-dash-web",
        "SIEM: ALB, WAF and web servers",
        "ALB, WAF, nginx and Apache access logs.",
        (
            "siem-vis-web-requests",
            "siem-vis-web-status",
            "siem-vis-web-paths",
            "siem-vis-web-error-clients",
            "siem-vis-web-methods",
            "siem-vis-web-agents",
            "siem-vis-web-bytes",
            "siem-vis-waf-actions",
            "siem-vis-waf-blocks",
            "siem-vis-waf-block-paths",
        ),
    ),
    Dashboard(
        "siem-dash-cloudtrail",
        "SIEM: CloudTrail",
        "AWS API activity: who called what, from where, what failed, what was sensitive.",
        (
            "siem-vis-ct-providers",
            "siem-vis-ct-actions",
            "siem-vis-ct-users",
            "siem-vis-cloudtrail-sensitive",
            "siem-vis-cloudtrail-errors",
            "siem-vis-ct-console-logins",
            "siem-vis-ct-outcome",
            "siem-vis-ct-accounts",
        ),
    ),
    Dashboard(
        "siem-dash-k8s",
        "SIEM: EKS / Kubernetes audit",
        "Kubernetes API server audit: human users, verbs, resources, exec/attach, anonymous access.",
        (
            "siem-vis-k8s-verbs",
            "siem-vis-eks-human-users",
            "siem-vis-k8s-resources",
            "siem-vis-k8s-exec",
            "siem-vis-k8s-anonymous",
            "siem-vis-k8s-namespaces",
            "siem-vis-k8s-status",
        ),
    ),
    Dashboard(
        "siem-dash-linux",
        "SIEM: Linux auth.log and auditd",
        "SSH and sudo from auth.log; process execution and changes from auditd.",
        (
            "siem-vis-auth-outcome",
            "siem-vis-ssh-failures",
            "siem-vis-ssh-accepted",
            "siem-vis-sudo",
            "siem-vis-auth-hosts",
            "siem-vis-auditd-actions",
            "siem-vis-auditd-executables",
            "siem-vis-auditd-commands",
        ),
    ),
    Dashboard(
        "siem-dash-network",
        "SIEM: VPC flow, DNS and Network Firewall",
        "VPC flow logs, Route 53 Resolver queries and AWS Network Firewall alerts.",
        (
            "siem-vis-flow-actions",
            "siem-vis-flow-talkers",
            "siem-vis-flow-rejected",
            "siem-vis-flow-ports",
            "siem-vis-dns-queries",
            "siem-vis-dns-clients",
            "siem-vis-dns-rcodes",
            "siem-vis-firewall",
        ),
    ),
    Dashboard(
        "siem-dash-alerts",
        "SIEM: Alerts",
        "Alerts raised by the detection rules (siem detect): by rule, severity, status and entity.",
        (
            "siem-vis-alerts-over-time",
            "siem-vis-alerts-open",
            "siem-vis-alerts-by-rule",
            "siem-vis-alerts-severity",
            "siem-vis-alerts-status",
            "siem-vis-alerts-ips",
            "siem-vis-alerts-users",
            "siem-vis-alerts-tactics",
            "siem-search-open-alerts",
        ),
        time_from="now-30d",
    ),
)
