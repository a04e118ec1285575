"""The "what" of a timeline row: one line that answers what happened, for every dataset.

Each log type says different things (a DNS question and its answer, a flow's 5-tuple and bytes, a
WAF rule and URI, an API call and its error), so each has its own summariser over the ECS document
it produces; anything unknown falls back to the event action, the HTTP request or the message, so a
row is never blank. Also here: where a row came from (host, account, file:offset), so it can be
found again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Doc = dict[str, Any]
MAX_WHAT = 400  # the full line for json/csv/html; the table truncates further


def get(doc: Doc, path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _s(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(_s(v) for v in value)
    return str(value)


def _join(*parts: Any) -> str:
    return " ".join(p for p in (_s(x).strip() for x in parts) if p)


def _hostport(ip: str, port: Any) -> str:
    if not ip:
        return f":{port}" if port is not None else "?"
    if port is None:
        return ip
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _endpoint(doc: Doc, side: str) -> str:
    ip = _s(get(doc, f"{side}.ip") or get(doc, f"{side}.domain") or get(doc, f"{side}.address"))
    return _hostport(ip, get(doc, f"{side}.port"))


def _request(doc: Doc) -> str:
    url = get(doc, "url.original") or _join(get(doc, "url.domain"), get(doc, "url.path"))
    return _join(get(doc, "http.request.method"), url, get(doc, "http.response.status_code"))


def _outcome(doc: Doc) -> str:
    outcome = get(doc, "event.outcome")
    return f"({outcome})" if outcome else ""


def _web(doc: Doc) -> str:
    size = get(doc, "http.response.body.bytes") or get(doc, "http.response.bytes")
    return _join(_request(doc), f"{size}B" if size is not None else "")


def _alb(doc: Doc) -> str:
    if get(doc, "aws.elb.type") == "connection":  # ALB connection log: the TLS handshake, no request
        verify = get(doc, "aws.elb.tls_verify_status")
        return _join(
            "connection",
            f"{_endpoint(doc, 'source')} → {_endpoint(doc, 'destination')}",
            get(doc, "aws.elb.tls_protocol"),
            f"verify={verify}" if verify else "",
        )
    target = get(doc, "aws.elb.target_status_code")
    error = get(doc, "aws.elb.error.reason")
    return _join(_web(doc), f"target={target}" if target is not None else "", error)


def _waf(doc: Doc) -> str:
    rule = get(doc, "aws.waf.terminating_rule_id") or get(doc, "rule.id")
    uri = get(doc, "url.original") or get(doc, "url.path")
    host = get(doc, "url.domain")
    return _join(get(doc, "aws.waf.action"), f"rule={rule}" if rule else "", get(doc, "http.request.method"), host, uri)


def _dns(doc: Doc) -> str:
    question = _join(get(doc, "dns.question.name"), get(doc, "dns.question.type"))
    answers = get(doc, "dns.resolved_ip") or [a.get("data") for a in get(doc, "dns.answers") or [] if a.get("data")]
    answer = f"→ {_s(answers)}" if answers else ""
    firewall = get(doc, "aws.route53.firewall.action")
    return _join("query", question, get(doc, "dns.response_code"), answer, f"firewall={firewall}" if firewall else "")


def _flow(doc: Doc) -> str:
    transport = get(doc, "network.transport") or get(doc, "network.iana_number") or ""
    size = get(doc, "network.bytes") or get(doc, "source.bytes")
    packets = get(doc, "network.packets")
    action = get(doc, "aws.vpcflow.action") or get(doc, "event.action")
    status = get(doc, "aws.vpcflow.log_status")
    return _join(
        transport,
        f"{_endpoint(doc, 'source')} → {_endpoint(doc, 'destination')}",
        f"{size}B" if size is not None else "",
        f"{packets}pkt" if packets is not None else "",
        action,
        f"log_status={status}" if status and status != "OK" else "",
    )


def _network_firewall(doc: Doc) -> str:
    kind = get(doc, "aws.firewall.event_type")
    rule = get(doc, "rule.name") or get(doc, "rule.id")
    action = get(doc, "event.action")
    detail = _request(doc) if get(doc, "http.request.method") else get(doc, "tls.client.server_name") or ""
    size = get(doc, "aws.firewall.flow.bytes")
    return _join(
        kind,
        get(doc, "network.transport"),
        f"{_endpoint(doc, 'source')} → {_endpoint(doc, 'destination')}",
        action,
        f"rule={rule!r}" if rule else "",
        f"{size}B" if size is not None else "",
        detail,
    )


_CT_TARGETS = ("bucketName", "userName", "groupName", "roleName", "keyName", "name", "instanceId", "functionName")


def _cloudtrail_target(doc: Doc) -> str:
    target = get(doc, "user.target.name")
    if target:
        return f"user={target}"
    resources = get(doc, "aws.cloudtrail.resources") or []
    if resources and isinstance(resources[0], dict) and resources[0].get("arn"):
        return _s(resources[0]["arn"])
    params = get(doc, "aws.cloudtrail.request_parameters")
    if isinstance(params, dict):
        for key in _CT_TARGETS:
            if isinstance(params.get(key), str | int):
                return f"{key}={params[key]}"
    return _s(get(doc, "group.name"))


def _cloudtrail(doc: Doc) -> str:
    action = get(doc, "event.action") or get(doc, "aws.cloudtrail.event_type")
    provider = _s(get(doc, "event.provider")).removesuffix(".amazonaws.com")
    error = _join(get(doc, "error.code"), get(doc, "error.message"))
    return _join(
        f"{provider}:{action}" if provider else action,
        _outcome(doc),
        _cloudtrail_target(doc),
        f"error={error}" if error else "",
    )


def _k8s(doc: Doc) -> str:
    audit = get(doc, "kubernetes.audit") or {}
    ref = audit.get("objectRef") or {}
    resource = _s(ref.get("resource"))
    if ref.get("subresource"):
        resource += f"/{ref['subresource']}"
    if ref.get("name"):
        resource += f" {ref['name']}"
    namespace = ref.get("namespace")
    decision = (audit.get("annotations") or {}).get("authorization_k8s_io/decision")
    return _join(
        audit.get("verb") or get(doc, "event.action"),
        resource or get(doc, "url.original"),
        f"ns={namespace}" if namespace else "",
        get(doc, "http.response.status_code"),
        decision,
        f"cmd={_s(get(doc, 'process.command_line'))}" if get(doc, "process.command_line") else "",
    )


def _auth(doc: Doc) -> str:
    action = get(doc, "event.action")
    if not action:
        return _s(get(doc, "message"))
    method = get(doc, "system.auth.ssh.method")
    command = get(doc, "system.auth.sudo.command")
    source = get(doc, "source.ip")
    return _join(
        action,
        _outcome(doc),
        f"method={method}" if method else "",
        f"user={get(doc, 'user.name')}" if get(doc, "user.name") else "",
        f"from {source}" if source else "",
        f"cmd={command}" if command else "",
        get(doc, "system.auth.sudo.error"),
    )


def _auditd(doc: Doc) -> str:
    command = get(doc, "process.command_line") or get(doc, "process.title")
    executable = get(doc, "process.executable")
    laddr = get(doc, "auditd.log.laddr")
    return _join(
        get(doc, "event.action") or get(doc, "auditd.log.record_type"),
        _outcome(doc),
        f"cmd={command}" if command else f"exe={executable}" if executable else "",
        f"file={get(doc, 'file.path')}" if get(doc, "file.path") else "",
        f"addr={_hostport(_s(laddr), get(doc, 'auditd.log.lport'))}" if laddr else "",
        f"{_endpoint(doc, 'source')} → {_endpoint(doc, 'destination')}" if get(doc, "destination.ip") else "",
    )


def _message(doc: Doc) -> str:
    return _join(get(doc, "process.name") and f"{get(doc, 'process.name')}:", get(doc, "message"))


def _container(doc: Doc) -> str:
    """A pod's own line: which pod, then its request, message, connection or first fields."""
    pod = get(doc, "orchestrator.resource.name") or get(doc, "container.name")
    namespace = get(doc, "orchestrator.namespace")
    level = get(doc, "log.level")
    if get(doc, "http.request.method") or get(doc, "url.original"):
        body = _request(doc)
    elif get(doc, "message"):
        body = _s(get(doc, "message"))
    elif get(doc, "destination.ip"):
        body = f"{_endpoint(doc, 'source')} → {_endpoint(doc, 'destination')}"
    else:
        fields = get(doc, "app.fields") or {}
        body = " ".join(f"{k}={_s(v)}" for k, v in list(fields.items())[:4] if not isinstance(v, dict))
    return _join(f"{namespace}/{pod}:" if namespace and pod else f"{pod}:" if pod else "", level and f"[{level}]", body)


def _error_log(doc: Doc) -> str:
    return _join(get(doc, "log.level") and f"[{get(doc, 'log.level')}]", get(doc, "message"))


SUMMARISERS: dict[str, Callable[[Doc], str]] = {
    "aws.alb": _alb,
    "aws.waf": _waf,
    "aws.route53_resolver": _dns,
    "aws.vpcflow": _flow,
    "aws.network_firewall": _network_firewall,
    "aws.cloudtrail": _cloudtrail,
    "kubernetes.audit": _k8s,
    "linux.auth": _auth,
    "linux.auditd": _auditd,
    "linux.syslog": _message,
    "kubernetes.container": _container,
    "nginx.access": _web,
    "apache.access": _web,
    "nginx.error": _error_log,
    "apache.error": _error_log,
}


def _fallback(doc: Doc) -> str:
    if get(doc, "http.request.method") or get(doc, "url.original"):
        return _web(doc)
    if get(doc, "message"):
        return _message(doc)
    if get(doc, "event.action"):
        return _join(get(doc, "event.action"), _outcome(doc))
    if get(doc, "destination.ip") or get(doc, "source.ip"):
        return _flow(doc)
    return _join(get(doc, "event.kind"), _s(get(doc, "event.category")))


def what(doc: Doc) -> str:
    """One line: what this event says happened (never empty for a stored event)."""
    summarise = SUMMARISERS.get(_s(get(doc, "event.dataset")), _fallback)
    line = summarise(doc) or _fallback(doc) or "(event)"
    line = " ".join(line.split())  # log data may carry newlines and tabs; a row is one line
    return line[:MAX_WHAT]


def host(doc: Doc) -> str:
    for path in ("host.name", "host.hostname", "orchestrator.cluster.name", "observer.name", "aws.elb.name"):
        if get(doc, path):
            return _s(get(doc, path))
    return ""


def account(doc: Doc) -> str:
    return _s(get(doc, "cloud.account.id"))


def location(doc: Doc) -> str:
    """file:offset of the record in its log object (what `siem parse` and dead letters also report)."""
    path = _s(get(doc, "log.file.path"))
    offset = get(doc, "log.offset")
    return f"{path}:{offset}" if offset is not None else path
