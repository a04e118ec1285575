"""The field pipeline (siem/detect/mapping.yml): real Sigma snippets compile to the IR on our fields.

Each expected IR below is written out by hand from the documents our parsers produce
(docs/sigma-mapping.md): the dataset condition first (pySigma's add_condition ANDs it in front),
then the rule's own condition with our field names.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sigma.processing.pipeline import ProcessingPipeline

from siem.detect import catalog, ir
from siem.detect.evaluate import matches
from siem.detect.ir import STAR, And, Exists, FieldRef, Not, Num, Or, Str
from siem.detect.mapping import PIPELINE_FILE, Mapper
from siem.detect.rules import Rule, load_file


def dataset(*names: str) -> ir.Node:
    leaves = [Str("event.dataset", (n,)) for n in names]
    return leaves[0] if len(leaves) == 1 else Or(tuple(leaves))


def compiled(tmp_path: Path, logsource: dict[str, str], detection: dict, name: str = "rule.yml") -> Rule:
    path = tmp_path / name
    doc = {"title": "t", "id": "11111111-2222-3333-4444-555555555555", "logsource": logsource, "detection": detection}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    (rule,) = load_file(path)
    return rule


def test_mapping_yml_is_a_pysigma_processing_pipeline() -> None:
    pipeline = ProcessingPipeline.from_yaml(PIPELINE_FILE.read_text(encoding="utf-8"))
    ids = {item.identifier for item in pipeline.items}
    for wanted in (
        "dataset-cloudtrail",
        "dataset-kubernetes-audit",
        "dataset-linux-auditd",
        "dataset-linux",
        "dataset-webserver",
        "dataset-proxy",
        "dataset-aws-waf",
        "dataset-aws-vpcflow",
        "dataset-aws-network-firewall",
        "dataset-aws-route53-resolver",
        "dataset-aws-alb",
    ):
        assert wanted in ids


def test_cloudtrail_fields_and_payload_prefixes_keep_their_case(tmp_path: Path) -> None:
    rule = compiled(
        tmp_path,
        {"product": "aws", "service": "cloudtrail"},
        {
            "selection": {
                "eventSource": "s3.amazonaws.com",
                "eventName": "PutBucketVersioning",
                "requestParameters.VersioningConfiguration.Status": "Suspended",
                "userIdentity.sessionContext.sessionIssuer.type": "Role",
                "sourceIPAddress|startswith": "203.0.113.",
            },
            "condition": "selection",
        },
    )
    assert rule.problems == []
    assert rule.condition == And(
        (
            dataset("aws.cloudtrail"),
            Str("event.provider", ("s3.amazonaws.com",)),
            Str("event.action", ("PutBucketVersioning",)),
            Str("aws.cloudtrail.request_parameters.VersioningConfiguration.Status", ("Suspended",)),
            Str("aws.cloudtrail.user_identity.session_context.session_issuer.type", ("Role",)),
            Str("source.address", ("203.0.113.", STAR)),
        )
    )


def test_cloudtrail_fieldref_is_mapped_on_both_sides(tmp_path: Path) -> None:
    rule = compiled(
        tmp_path,
        {"product": "aws", "service": "cloudtrail"},
        {
            "selection": {"eventName": "UpdateLoginProfile"},
            "filter": {"userIdentity.arn|fieldref": "requestParameters.userName"},
            "condition": "selection and not filter",
        },
    )
    assert rule.problems == []
    assert rule.condition == And(
        (
            dataset("aws.cloudtrail"),
            Str("event.action", ("UpdateLoginProfile",)),
            Not(FieldRef("aws.cloudtrail.user_identity.arn", "aws.cloudtrail.request_parameters.userName")),
        )
    )


def test_cloudtrail_whole_payload_search_looks_at_every_value_below_the_payload(tmp_path: Path) -> None:
    rule = compiled(
        tmp_path,
        {"product": "aws", "service": "cloudtrail"},
        {
            "selection": {"eventName": "PutBucketVersioning", "requestParameters|contains": "Suspended"},
            "condition": "selection",
        },
    )
    assert rule.runnable, rule.problems
    assert rule.condition == And(
        (
            dataset("aws.cloudtrail"),
            Str("event.action", ("PutBucketVersioning",)),
            Str("aws.cloudtrail.request_parameters.**", (STAR, "Suspended", STAR)),
        )
    )
    deep = {"aws": {"cloudtrail": {"request_parameters": {"VersioningConfiguration": {"Status": "Suspended"}}}}}
    shallow = {"aws": {"cloudtrail": {"request_parameters": {"bucketName": "x"}}}, "note": "Suspended"}
    assert matches(rule.condition.args[2], deep)
    assert not matches(rule.condition.args[2], shallow)


def test_kubernetes_audit_fields_and_sigmahq_short_forms(tmp_path: Path) -> None:
    rule = compiled(
        tmp_path,
        {"category": "application", "product": "kubernetes", "service": "audit"},
        {
            "selection": {
                "verb": "create",
                "objectRef.resource": "pods",
                "apiGroup": "authorization.k8s.io",
                "hostPath": "*",
                "responseStatus.code": 403,
                "requestObject.spec.hostNetwork": True,
            },
            "condition": "selection",
        },
    )
    assert rule.problems == []
    assert rule.condition == And(
        (
            dataset("kubernetes.audit"),
            Str("kubernetes.audit.verb", ("create",)),
            Str("kubernetes.audit.objectRef.resource", ("pods",)),
            Str("kubernetes.audit.objectRef.apiGroup", ("authorization.k8s.io",)),
            Str("kubernetes.audit.requestObject.spec.volumes.hostPath.path", (STAR,)),
            Num("kubernetes.audit.responseStatus.code", "eq", 403),
            Str("kubernetes.audit.requestObject.spec.hostNetwork", ("true",)),
        )
    )


def test_auditd_type_is_any_record_and_arguments_are_positional(tmp_path: Path) -> None:
    rule = compiled(
        tmp_path,
        {"product": "linux", "service": "auditd"},
        {
            "selection": {"type": "EXECVE", "a0": "iptables", "a5": "-j"},
            "keywords": ["--to-ports 42"],
            "condition": "selection and keywords",
        },
    )
    assert rule.problems == []
    assert rule.condition == And(
        (
            dataset("linux.auditd"),
            Or((Str("auditd.log.record_type", ("EXECVE",)), Str("auditd.log.record_types", ("EXECVE",)))),
            Or((Str("auditd.execve.a0", ("iptables",)), Str("auditd.log.a0", ("iptables",)))),
            Str("auditd.execve.a5", ("-j",)),
            Str("process.command_line", (STAR, "--to-ports 42", STAR)),  # a keyword is a contains search
        )
    )


def test_auditd_syscall_name_path_records_and_ids(tmp_path: Path) -> None:
    rule = compiled(
        tmp_path,
        {"product": "linux", "service": "auditd"},
        {
            "selection": {"SYSCALL": "execve", "euid": 33, "nametype": "CREATE", "name|startswith": "/etc/"},
            "condition": "selection",
        },
    )
    assert rule.problems == []
    assert rule.condition == And(
        (
            dataset("linux.auditd"),
            Str("auditd.log.syscall_name", ("execve",)),
            Num("user.effective.id", "eq", 33),
            Str("auditd.log.paths.nametype", ("CREATE",)),
            Str("auditd.log.paths.name", ("/etc/", STAR)),
        )
    )


def test_linux_without_service_is_auth_or_syslog_keywords_on_message(tmp_path: Path) -> None:
    rule = compiled(
        tmp_path, {"product": "linux"}, {"keywords": ["history -c", "rm *sh_history"], "condition": "keywords"}
    )
    assert rule.problems == []
    assert rule.condition == And(
        (
            dataset("linux.auth", "linux.syslog"),
            Or((Str("message", (STAR, "history -c", STAR)), Str("message", (STAR, "rm ", STAR, "sh_history", STAR)))),
        )
    )


def test_linux_daemon_services_are_scoped_by_program_name(tmp_path: Path) -> None:
    rule = compiled(
        tmp_path,
        {"product": "linux", "service": "sshd"},
        {"keywords": ["Corrupted MAC on input"], "condition": "keywords"},
    )
    assert rule.problems == []
    assert rule.condition == And(
        (
            dataset("linux.auth", "linux.syslog"),
            Str("process.name", ("sshd",)),
            Str("message", (STAR, "Corrupted MAC on input", STAR)),
        )
    )
    auth = compiled(
        tmp_path, {"product": "linux", "service": "auth"}, {"sel": {"user.name": "root"}, "condition": "sel"}
    )
    assert auth.condition == And((dataset("linux.auth"), Str("user.name", ("root",))))


def test_webserver_fields_onto_http_url_and_user_agent(tmp_path: Path) -> None:
    rule = compiled(
        tmp_path,
        {"category": "webserver"},
        {
            "selection": {"cs-method": "GET", "cs-uri-query|contains": "../etc/", "c-useragent|contains": "sqlmap/"},
            "filter": {"sc-status": 404},
            "condition": "selection and not filter",
        },
    )
    assert rule.problems == []
    traversal = (STAR, "../etc/", STAR)
    assert rule.condition == And(
        (
            dataset("aws.alb", "nginx.access", "apache.access", "aws.waf"),
            Str("http.request.method", ("GET",)),
            Or((Str("url.original", traversal), Str("url.path", traversal), Str("url.query", traversal))),
            Str("user_agent.original", (STAR, "sqlmap/", STAR)),
            Not(Num("http.response.status_code", "eq", 404)),
        )
    )


def test_proxy_empty_user_agent_means_absent_and_extension_maps(tmp_path: Path) -> None:
    rule = compiled(
        tmp_path,
        {"category": "proxy"},
        {
            "selection": {"c-useragent": "", "c-uri-extension": "exe", "cs-host|endswith": ".no-ip.org"},
            "condition": "selection",
        },
    )
    assert rule.problems == []
    assert rule.condition == And(
        (
            dataset("aws.alb", "nginx.access", "apache.access", "aws.waf"),
            Not(Exists("user_agent.original")),  # our parsers drop empty and "-" values
            Str("url.extension", ("exe",)),
            Str("url.domain", (STAR, ".no-ip.org")),
        )
    )


def test_product_nginx_webserver_is_nginx_access_only(tmp_path: Path) -> None:
    rule = compiled(
        tmp_path, {"product": "nginx", "category": "webserver"}, {"sel": {"sc-status|gte": 500}, "condition": "sel"}
    )
    assert rule.problems == []
    assert rule.condition == And((dataset("nginx.access"), Num("http.response.status_code", "gte", 500)))
    error = compiled(
        tmp_path, {"service": "apache"}, {"keywords": ["exit signal Segmentation Fault"], "condition": "keywords"}
    )
    assert error.condition == And(
        (dataset("apache.error"), Str("message", (STAR, "exit signal Segmentation Fault", STAR)))
    )


@pytest.mark.parametrize(
    ("service", "wanted", "field"),
    [
        ("waf", "aws.waf", "aws.waf.action"),
        ("vpcflow", "aws.vpcflow", "destination.port"),
        ("network_firewall", "aws.network_firewall", "destination.port"),
        ("route53_resolver", "aws.route53_resolver", "dns.question.name"),
        ("alb", "aws.alb", "http.response.status_code"),
    ],
)
def test_our_own_aws_logsources_take_our_field_names(tmp_path: Path, service: str, wanted: str, field: str) -> None:
    rule = compiled(tmp_path, {"product": "aws", "service": service}, {"sel": {field: "x"}, "condition": "sel"})
    assert rule.problems == []
    assert rule.condition == And((dataset(wanted), Str(field, ("x",))))


def test_uncarried_field_is_a_problem_naming_the_rule_file_and_the_field(tmp_path: Path) -> None:
    rule = compiled(
        tmp_path,
        {"category": "proxy"},
        {"selection": {"cs-cookie|endswith": "=csm-hit", "cs-method": "GET"}, "condition": "selection"},
        name="cookie_rule.yml",
    )
    assert not rule.runnable
    assert rule.path == tmp_path / "cookie_rule.yml"
    assert rule.problems == [
        "field 'cs-cookie' is not carried by apache.access, aws.alb, aws.waf, nginx.access documents"
    ]


def test_field_carried_by_another_dataset_only_is_still_a_problem(tmp_path: Path) -> None:
    # http.request.referrer exists in nginx/apache documents, never in CloudTrail ones
    rule = compiled(
        tmp_path,
        {"product": "aws", "service": "cloudtrail"},
        {"sel": {"http.request.referrer": "x"}, "condition": "sel"},
    )
    assert rule.problems == ["field 'http.request.referrer' is not carried by aws.cloudtrail documents"]


@pytest.mark.parametrize(
    "logsource",
    [
        {"product": "windows", "service": "security"},
        {"product": "linux", "service": "journald"},  # a Linux service we do not carry
        {"product": "linux", "category": "process_creation"},
        {"product": "gcp", "service": "gcp.audit"},
    ],
)
def test_unknown_logsource_is_a_problem(tmp_path: Path, logsource: dict[str, str]) -> None:
    rule = compiled(tmp_path, logsource, {"keywords": ["x"], "condition": "keywords"})
    assert not rule.runnable
    assert any("is not carried by any dataset" in p for p in rule.problems), rule.problems


def test_correlation_fields_map_as_the_referenced_logsource_maps_them(tmp_path: Path) -> None:
    (base,) = [
        compiled(
            tmp_path,
            {"product": "aws", "service": "cloudtrail"},
            {"sel": {"eventName": "ConsoleLogin"}, "condition": "sel"},
        )
    ]
    mapper = Mapper()
    assert mapper.map_correlation_field("sourceIPAddress", [base]) == "source.address"
    assert mapper.map_correlation_field("requestParameters.userName", [base]) == (
        "aws.cloudtrail.request_parameters.userName"
    )
    assert mapper.map_correlation_field("source.ip", [base]) == "source.ip"  # our own name stays


def test_catalog_accepts_free_form_sub_paths_only_where_the_dataset_has_the_root() -> None:
    cat = catalog.Catalog.load()
    assert cat.carries("aws.cloudtrail.request_parameters.anyThing", ["aws.cloudtrail"])
    assert not cat.carries("aws.cloudtrail.request_parameters.anyThing", ["nginx.access"])
    assert cat.carries("url.extension", ["nginx.access"])
    assert not cat.carries("url.extension", ["aws.cloudtrail"])
