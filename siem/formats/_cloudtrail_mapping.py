"""CloudTrail mapping: one record (API call, console sign-in, service event or Insight) as ECS.

The field choices and every deliberate difference from Elastic's integration are in
docs/log-types/aws.cloudtrail.md; the framing that hands records here is _cloudtrail_framing.py.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from siem.formats._cloudtrail_categories import categorize
from siem.formats._json_payload import as_object, nonempty_str, strings
from siem.formats.base import RecordError
from siem.normalize import iso_utc, valid_ip

_ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z$")

_HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"
_PAYLOADS = (
    ("requestParameters", "request_parameters"),
    ("responseElements", "response_elements"),
    ("additionalEventData", "additional_eventdata"),
    ("serviceEventDetails", "service_event_details"),
)
_EVENT = (("eventName", "action"), ("eventSource", "provider"), ("eventID", "id"))
_SCALARS = (
    ("eventVersion", "event_version"),
    ("eventType", "event_type"),
    ("eventCategory", "event_category"),
    ("apiVersion", "api_version"),
    ("requestID", "request_id"),
    ("recipientAccountId", "recipient_account_id"),
    ("sharedEventID", "shared_event_id"),
    ("vpcEndpointId", "vpc_endpoint_id"),
    ("vpcEndpointAccountId", "vpc_endpoint_account_id"),
    ("errorCode", "error_code"),
    ("errorMessage", "error_message"),
)
# userIdentity, its sessionContext.sessionIssuer and insightDetails: string fields kept as they are.
_IDENTITY = (
    ("type", "type"),
    ("principalId", "principal_id"),
    ("arn", "arn"),
    ("accountId", "account_id"),
    ("accessKeyId", "access_key_id"),
    ("userName", "user_name"),
    ("invokedBy", "invoked_by"),
    ("identityProvider", "identity_provider"),
    ("credentialId", "credential_id"),
    ("userId", "user_id"),
    ("identityStoreArn", "identity_store_arn"),
)
_ISSUER = (
    ("type", "type"),
    ("principalId", "principal_id"),
    ("arn", "arn"),
    ("accountId", "account_id"),
    ("userName", "user_name"),
)
_INSIGHT = (
    ("state", "state"),
    ("eventSource", "event_source"),
    ("eventName", "event_name"),
    ("insightType", "insight_type"),
    ("errorCode", "error_code"),
)
_BOOLS = (
    ("readOnly", "read_only"),
    ("managementEvent", "management_event"),
    ("sessionCredentialFromConsole", "session_credential_from_console"),
)


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.lower()
        if lowered in ("true", "yes"):
            return True
        if lowered in ("false", "no"):
            return False
    return None


def _timestamp(value: Any) -> str:
    if isinstance(value, str):
        if _ISO_Z.match(value):
            return value
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return iso_utc(parsed)
    raise RecordError(f"eventTime {str(value)[:40]!r} is not an ISO 8601 UTC time")


def _drop_nulls(value: Any) -> Any:
    """API payloads without nulls: they carry nothing, and flat_object has had null bugs."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value if v is not None]
    return value


def _arn_name(arn: str | None) -> tuple[str | None, str | None]:
    """(user name, role name) from an identity ARN: assumed-role/<role>/<session>,
    federated-user/<name>, user/<path>/<name> or :root."""
    if not arn:
        return None, None
    resource = arn.split(":", 5)[-1]
    kind, _, rest = resource.partition("/")
    if kind == "assumed-role":
        role, _, session = rest.partition("/")
        return session or None, role or None
    if kind in ("federated-user", "user") and rest:
        return rest.rsplit("/", 1)[-1], None
    if resource == "root":
        return "root", None
    return None, None


def _identity(ident: dict[str, Any], doc: dict[str, Any], ct: dict[str, Any], related_users: list[str]) -> None:
    """userIdentity → user.* and aws.cloudtrail.user_identity.*; the name is the person or session."""
    out: dict[str, Any] = strings(ident, _IDENTITY)
    kind = out.get("type")
    context = ident.get("sessionContext")
    issuer_name = None
    if isinstance(context, dict):
        session: dict[str, Any] = {}
        attributes = context.get("attributes")
        if isinstance(attributes, dict):
            mfa = attributes.get("mfaAuthenticated")
            if isinstance(mfa, str | bool):
                session["mfa_authenticated"] = str(mfa).lower()
            created = nonempty_str(attributes.get("creationDate"))
            if created:
                try:
                    session["creation_date"] = _timestamp(created)
                except RecordError:
                    session["creation_date"] = created  # old records: 20131102T010628Z
        source_identity = nonempty_str(context.get("sourceIdentity"))
        if source_identity:
            session["source_identity"] = source_identity
            related_users.append(source_identity)
        issuer = context.get("sessionIssuer")
        if isinstance(issuer, dict):
            issued = strings(issuer, _ISSUER)
            if issued:
                session["session_issuer"] = issued
                issuer_name = issued.get("user_name")
        web = context.get("webIdFederationData")
        if isinstance(web, dict) and nonempty_str(web.get("federatedProvider")):
            session["web_id_federation_data"] = {"federated_provider": web["federatedProvider"]}
        if session:
            out["session_context"] = session
    if out:
        ct["user_identity"] = out

    arn_user, arn_role = _arn_name(out.get("arn"))
    name = out.get("user_name")
    if name == _HIDDEN:
        name = None  # failed console logins of unknown users: a placeholder, not a name
    if kind == "AssumedRole" or (kind == "FederatedUser" and arn_user):
        name = arn_user or name
    if name is None:
        if kind == "Root":
            name = "root"
        elif kind == "AWSService":
            name = out.get("invoked_by")
        elif arn_user:
            name = arn_user
        else:
            principal = out.get("principal_id", "")
            name = principal.partition(":")[2] or None
    user: dict[str, Any] = {}
    if name:
        user["name"] = name
    user_id = out.get("principal_id") or out.get("user_id")
    on_behalf = ident.get("onBehalfOf")
    if isinstance(on_behalf, dict) and nonempty_str(on_behalf.get("userId")):
        out["on_behalf_of"] = {"user_id": on_behalf["userId"]}
    if user_id:
        user["id"] = user_id
    role = issuer_name if kind == "AssumedRole" and issuer_name else arn_role
    if role:
        user["roles"] = [role]
    if user:
        doc["user"] = user


def _resources(value: Any) -> list[dict[str, Any]]:
    """resources[] with ECS-ish keys, duplicates (same arn/account/type) dropped."""
    seen: dict[tuple[Any, Any, Any], dict[str, Any]] = {}
    if isinstance(value, list):
        for item in value:
            if not isinstance(item, dict):
                continue
            resource = strings(item, (("ARN", "arn"), ("arn", "arn"), ("accountId", "account_id"), ("type", "type")))
            if resource:
                seen.setdefault((resource.get("arn"), resource.get("account_id"), resource.get("type")), resource)
    return list(seen.values())


def _s3_object(doc: dict[str, Any], ct: dict[str, Any], params: dict[str, Any]) -> None:
    """S3 calls: the object as file.* and the bucket/object ARNs in resources, so one search on
    an object or bucket finds data events and management events alike."""
    bucket = nonempty_str(params.get("bucketName"))
    if bucket is None:
        return
    resources = ct.setdefault("resources", [])
    arns = {r.get("arn") for r in resources}
    bucket_arn = f"arn:aws:s3:::{bucket}"
    wanted = [(bucket_arn, "AWS::S3::Bucket")]
    key = nonempty_str(params.get("key"))
    if key:
        wanted.append((f"{bucket_arn}/{key}", "AWS::S3::Object"))
        directory, _, filename = key.rpartition("/")
        file: dict[str, Any] = {"path": f"s3://{bucket}/{key}", "directory": f"s3://{bucket}/{directory}".rstrip("/")}
        if filename:
            file["name"] = filename
        doc["file"] = file
    for arn, kind in wanted:
        if arn not in arns:
            resources.append({"arn": arn, "type": kind})


def cloudtrail_to_ecs(raw: dict[str, Any]) -> dict[str, Any]:
    """One CloudTrail record (API call, console sign-in, service event or Insight) as ECS."""
    doc: dict[str, Any] = {"@timestamp": _timestamp(raw.get("eventTime"))}
    ct: dict[str, Any] = strings(raw, _SCALARS)
    event: dict[str, Any] = {"kind": "event", **strings(raw, _EVENT)}
    name, source = event.get("action"), event.get("provider")
    related_users: list[str] = []

    for key, target in _BOOLS:
        value = _bool(raw.get(key))
        if value is not None:
            ct[target] = value
    for key, target in _PAYLOADS:
        value = raw.get(key)
        if value is None:
            continue
        value = as_object(_drop_nulls(value))
        if value:
            ct[target] = value

    ident = raw.get("userIdentity")
    if isinstance(ident, dict):
        _identity(ident, doc, ct, related_users)

    event["category"], event["type"] = categorize(name, source, ct.get("read_only"))
    error_code, error_message = ct.get("error_code"), ct.get("error_message")
    if error_code or error_message:
        event["outcome"] = "failure"
        doc["error"] = {k: v for k, v in (("code", error_code), ("message", error_message)) if v}
    else:
        event["outcome"] = "success"
    response = ct.get("response_elements")
    if name == "ConsoleLogin" and response:
        result = response.get("ConsoleLogin")
        if isinstance(result, str) and result:
            event["outcome"] = result.lower()
        extra = ct.get("additional_eventdata") or {}
        login: dict[str, Any] = {}
        for key, target in (("MobileVersion", "mobile_version"), ("MFAUsed", "mfa_used")):
            flag = _bool(extra.get(key))
            if flag is not None:
                login[target] = flag
        if nonempty_str(extra.get("LoginTo")):
            login["login_to"] = extra["LoginTo"]
        if login:
            ct["console_login"] = {"additional_eventdata": login}
    doc["event"] = event

    cloud: dict[str, Any] = {"provider": "aws"}
    region = nonempty_str(raw.get("awsRegion"))
    if region:
        cloud["region"] = region
    account = ct.get("recipient_account_id") or ct.get("user_identity", {}).get("account_id")
    if account:
        cloud["account"] = {"id": account}
    doc["cloud"] = cloud

    address = nonempty_str(raw.get("sourceIPAddress"))
    if address:
        ip = valid_ip(address)
        doc["source"] = {"ip": ip, "address": ip} if ip else {"address": address}
    agent = nonempty_str(raw.get("userAgent"))
    if agent:
        doc["user_agent"] = {"original": agent}

    tls_details = raw.get("tlsDetails")
    if isinstance(tls_details, dict):
        tls: dict[str, Any] = {}
        version = nonempty_str(tls_details.get("tlsVersion"))
        if version:
            protocol, _, number = version.partition("v")
            if number:
                tls["version"] = number
                tls["version_protocol"] = protocol.lower()
        cipher = nonempty_str(tls_details.get("cipherSuite"))
        if cipher:
            tls["cipher"] = cipher
        host = nonempty_str(tls_details.get("clientProvidedHostHeader"))
        if host:
            tls["client"] = {"server_name": host}
        if tls:
            doc["tls"] = tls

    resources = _resources(raw.get("resources"))
    if resources:
        ct["resources"] = resources
    params = ct.get("request_parameters")
    if params:
        if source == "s3.amazonaws.com":
            _s3_object(doc, ct, params)
        target_name = nonempty_str(params.get("userName"))
        if target_name:
            doc.setdefault("user", {})["target"] = {"name": target_name}
        new_name = nonempty_str(params.get("newUserName"))
        if new_name:
            doc.setdefault("user", {})["changes"] = {"name": new_name}
            related_users.append(new_name)
        group_name = nonempty_str(params.get("groupName"))
        if group_name:
            doc["group"] = {"name": group_name}
        session_name = nonempty_str(params.get("roleSessionName"))
        if session_name:
            related_users.append(session_name)
    if response:
        created_user = response.get("user")
        if isinstance(created_user, dict) and nonempty_str(created_user.get("userId")):
            doc.setdefault("user", {}).setdefault("target", {})["id"] = created_user["userId"]
        created_group = response.get("group")
        if isinstance(created_group, dict) and nonempty_str(created_group.get("groupId")):
            doc.setdefault("group", {})["id"] = created_group["groupId"]

    insight = raw.get("insightDetails")
    if isinstance(insight, dict):
        details: dict[str, Any] = strings(insight, _INSIGHT)
        context = insight.get("insightContext")
        if isinstance(context, dict) and context:
            details["insight_context"] = _drop_nulls(context)
        if details:
            ct["insight_details"] = details

    if ct:
        doc["aws"] = {"cloudtrail": ct}
    if related_users:
        doc["related"] = {"user": list(dict.fromkeys(related_users))}
    return doc
