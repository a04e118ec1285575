"""AWS CloudTrail: S3 delivery files ({"Records":[...]}, often one line of tens of MB), NDJSON
(one record per line), JSON arrays of records, Insights events and digest files.

Delivery layout: AWSLogs/[o-<org>/]<account>/CloudTrail{,-Digest,-Insight}/<region>/YYYY/MM/DD/...json.gz
Record fields: https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html

A Records file is framed incrementally so memory stays flat in the object's size: records are
cut out of a sliding text window, the common compact case (`},{"eventVersion"` between records)
by str.find + orjson, anything else by the stdlib decoder's raw_decode, which also tells a
truncated record from a corrupt one.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any, BinaryIO

import orjson

from siem.formats._json_payload import as_object, nonempty_str, strings
from siem.formats.base import BadRecord, ParseOptions, Record, RecordError, Skipped
from siem.normalize import iso_utc, valid_ip

CHUNK = 1 << 20  # bytes read per refill
MAX_RECORD = 16 << 20  # characters one record may span before it is called corrupt
RAW_KEEP = 16 * 1024  # characters of a bad record kept for its dead letter

_WS = re.compile(r"[ \t\r\n]*")
_RECORDS_OPEN = re.compile(r'\{[ \t\r\n]*"Records"[ \t\r\n]*:[ \t\r\n]*\[')
_NEXT_RECORD = '},{"eventVersion"'  # how AWS writes the boundary between two records
_RESYNC_IN_ARRAY = re.compile(r'\{[ \t\r\n]*"eventVersion"[ \t\r\n]*:')
_RESYNC_TOP = re.compile(r"\n(?=[\[{])")  # the next line that starts a top-level value
_ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z$")
_SNIFF_START = re.compile(rb'^\s*(?:\{\s*"Records"\s*:\s*)?\[?\s*\{\s*"')
# Keys only CloudTrail writes (S3 event notifications also have Records/eventVersion/eventTime,
# but their eventSource is "aws:s3"); an escaped copy inside a string never matches.
_SNIFF_MARKERS = re.compile(
    rb'"(?:recipientAccountId|eventCategory|insightDetails|digestS3Object)"\s*:'
    rb'|"eventType"\s*:\s*"Aws|"eventSource"\s*:\s*"[\w.-]+\.amazonaws\.com"'
)
_DECODER = json.JSONDecoder()

# ---------------------------------------------------------------------------------------------
# Framing


class _Window:
    """Decoded text of the stream from the oldest byte still needed; refilled a chunk at a time."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.text = ""
        self.pos = 0
        self.eof = False

    def fill(self, want: int = CHUNK) -> bool:
        """Drop text before pos and append at least ``want`` more bytes; False at end of stream."""
        if self.eof:
            return False
        data = self._stream.read(max(want, CHUNK))
        if self.pos:
            self.text = self.text[self.pos :]
            self.pos = 0
        if not data:
            self.eof = True
            self.text += self._decoder.decode(b"", final=True)
            return False
        self.text += self._decoder.decode(data)
        return True

    def skip_ws(self) -> bool:
        """Advance over whitespace; False when only whitespace is left in the stream."""
        while True:
            self.pos = _WS.match(self.text, self.pos).end()
            if self.pos < len(self.text):
                return True
            if not self.fill():
                return self.pos < len(self.text)

    def ensure(self, count: int) -> None:
        """At least ``count`` characters after pos, unless the stream ends first."""
        while len(self.text) - self.pos < count and self.fill():
            pass


class _Corrupt(Exception):
    """No JSON value where a record should start; the message is the dead-letter reason."""

    def __init__(self, reason: str, end: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.end = end  # where the bad value ends, when that is known


def _decode(win: _Window, boundary: str) -> Any:
    """The JSON value at win.pos, advancing past it; _Corrupt when there is none.

    The stdlib decoder only finds where a value ends; the value itself always comes from orjson,
    so a record the sink could not serialise (lone surrogates, NaN) is rejected here.
    """
    text, start = win.text, win.pos
    cut = text.find(boundary, start)
    if cut != -1:
        try:
            value = orjson.loads(text[start : cut + 1])
        except orjson.JSONDecodeError:
            pass  # the boundary string sat inside a value, or the value is bad: let raw_decode decide
        else:
            win.pos = cut + 1
            return value
    while True:
        try:
            end = _DECODER.raw_decode(win.text, win.pos)[1]
        except json.JSONDecodeError as exc:
            maybe_cut = exc.msg.startswith("Unterminated string") or exc.pos >= len(win.text) - 16
            if not maybe_cut:
                raise _Corrupt(f"invalid JSON: {exc.msg} (character {exc.pos - win.pos} of the record)") from None
            if len(win.text) - win.pos > MAX_RECORD:
                raise _Corrupt(f"record is not complete within {MAX_RECORD} characters") from None
            if not win.fill(len(win.text) - win.pos):
                if exc.pos > win.pos:
                    raise _Corrupt("truncated: the object ends inside this record") from None
                raise _Corrupt(f"invalid JSON: {exc.msg} (at the end of the object)") from None
            continue
        except RecursionError:
            raise _Corrupt("invalid JSON: nested too deeply") from None
        try:
            value = orjson.loads(win.text[win.pos : end])
        except orjson.JSONDecodeError as exc:
            raise _Corrupt(f"invalid JSON: {exc}", end) from None
        win.pos = end
        return value


def _skip_bad(win: _Window, index: int, exc: _Corrupt, pattern: re.Pattern[str]) -> tuple[BadRecord, bool]:
    """Dead-letter the corrupt record at win.pos (where a failed decode leaves it) and move to
    where the next record can start; the bool is False when the stream has nothing after it."""
    reason = exc.reason
    if exc.end is not None:
        raw = win.text[win.pos : min(exc.end, win.pos + RAW_KEEP)]
        win.pos = exc.end
        return BadRecord(index, reason, raw.encode("utf-8", errors="replace")), True
    offset = 1
    raw: str | None = None
    while True:
        match = pattern.search(win.text, win.pos + offset)
        end = match.start() + (1 if pattern is _RESYNC_TOP else 0) if match else len(win.text)
        if raw is None:
            raw = win.text[win.pos : min(end, win.pos + RAW_KEEP)]
        if match:
            win.pos = end
            return BadRecord(index, reason, raw.encode("utf-8", errors="replace")), True
        win.pos = max(len(win.text) - 64, win.pos)  # a pattern may straddle the refill
        offset = 0
        if not win.fill():
            win.pos = len(win.text)
            return BadRecord(index, reason, raw.encode("utf-8", errors="replace")), False


def _classify(value: Any, index: int) -> Record | BadRecord | Skipped:
    if isinstance(value, dict):
        if "digestStartTime" in value or "digestS3Object" in value:
            return Skipped(index, "CloudTrail digest file: log-file integrity metadata, not an event")
        if "Records" in value:
            return BadRecord(index, "Records is not a list of records", json.dumps(value)[:RAW_KEEP].encode())
        detail = value.get("detail")
        if "detail-type" in value and isinstance(detail, dict) and "eventVersion" in detail:
            return index, detail  # an EventBridge "AWS API Call via CloudTrail" event
        return index, value
    raw = json.dumps(value)[:RAW_KEEP].encode()
    return BadRecord(index, f"expected a CloudTrail record (JSON object), got {type(value).__name__}", raw)


def iter_records(stream: BinaryIO) -> Iterator[Record | BadRecord | Skipped]:
    """Every record of a CloudTrail object, whatever its shape; positions are record ordinals."""
    win = _Window(stream)
    index = 0
    while win.skip_ws():
        win.ensure(64)
        opening = _RECORDS_OPEN.match(win.text, win.pos)
        if opening or win.text[win.pos] == "[":
            win.pos = opening.end() if opening else win.pos + 1
            for item in _array(win, index):
                index += 1
                yield item
            if opening and win.skip_ws():
                if win.text[win.pos] == "}":
                    win.pos += 1
                else:
                    # Here and below _skip_bad's "more" is not needed: with nothing left, skip_ws() ends the loop.
                    yield _skip_bad(win, index, _Corrupt("unexpected content after the Records array"), _RESYNC_TOP)[0]
                    index += 1
            continue
        try:
            value = _decode(win, "\n")
        except _Corrupt as exc:
            yield _skip_bad(win, index, exc, _RESYNC_TOP)[0]
            index += 1
            continue
        if isinstance(value, dict) and isinstance(value.get("Records"), list):
            for item in value["Records"]:  # a wrapper whose first key was not Records
                yield _classify(item, index)
                index += 1
            continue
        yield _classify(value, index)
        index += 1


def _array(win: _Window, first_index: int) -> Iterator[Record | BadRecord | Skipped]:
    """The elements of a JSON array whose '[' has been consumed, up to and including its ']'."""
    index = first_index
    expect_value = True
    while True:
        if not win.skip_ws():
            yield BadRecord(index, "truncated: the object ends before the Records array is closed", b"")
            return
        char = win.text[win.pos]
        if char == "]":
            win.pos += 1
            return
        if char == "," and not expect_value:
            win.pos += 1
            expect_value = True
            continue
        if not expect_value and char == "{":  # a lost ',': report the damage, keep the record
            yield BadRecord(index, "expected ',' between records, found '{'", b"")
            index += 1
            expect_value = True
        try:
            if not expect_value:
                raise _Corrupt(f"expected ',' or ']' between records, found {char!r}")
            value = _decode(win, _NEXT_RECORD)
        except _Corrupt as exc:
            bad, more = _skip_bad(win, index, exc, _RESYNC_IN_ARRAY)
            yield bad
            index += 1
            if not more:
                return
            expect_value = exc.end is None  # after a value we skipped whole, a ',' comes next
            continue
        yield _classify(value, index)
        index += 1
        expect_value = False


# ---------------------------------------------------------------------------------------------
# Mapping

_AUTH_STS = frozenset(
    {
        "AssumeRole",
        "AssumeRoleWithSAML",
        "AssumeRoleWithWebIdentity",
        "AssumeRoot",
        "GetFederationToken",
        "GetSessionToken",
    }
)
# IAM nouns whose Create/Delete creates or deletes the principal itself (others change one).
_IAM_ENTITIES = frozenset(
    {"User", "Group", "Role", "Policy", "InstanceProfile", "SAMLProvider", "OpenIDConnectProvider", "KeyPair"}
)
_IAM_USER_PARTS = ("User", "AccessKey", "SSHPublicKey", "MFADevice", "LoginProfile", "SigningCertificate")
_S3_FILE = {
    "CreateBucket": "creation",
    "DeleteBucket": "deletion",
    "GetObject": "access",
    "HeadObject": "access",
    "PutObject": "creation",
    "CopyObject": "creation",
    "CompleteMultipartUpload": "creation",
    "DeleteObject": "deletion",
    "DeleteObjects": "deletion",
}
_VERB = re.compile(r"^[A-Z][a-z]+")
_READ_VERBS = frozenset({"Get", "List", "Describe", "Head", "Lookup", "Search", "Select", "Scan", "Query"})
_CREATE_VERBS = frozenset({"Create", "Run", "Allocate", "Import", "Register", "Issue", "Generate"})
_DELETE_VERBS = frozenset({"Delete", "Remove", "Terminate", "Release", "Deregister", "Revoke", "Purge"})
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


def _categorize(name: str | None, source: str | None, read_only: bool | None) -> tuple[list[str], list[str]]:
    """ECS category/type from the API name: Elastic's choices for the calls it lists, ``api`` for the rest."""
    if name is None:
        return ["api"], ["info"]
    if name == "ConsoleLogin" or (source == "sts.amazonaws.com" and name in _AUTH_STS):
        return ["authentication"], ["info"]
    verb_match = _VERB.match(name)
    verb = verb_match.group() if verb_match else ""
    noun = name[len(verb) :]
    if source == "s3.amazonaws.com" and name in _S3_FILE:
        return ["file"], [_S3_FILE[name]]
    if source == "iam.amazonaws.com" or (source == "ec2.amazonaws.com" and noun == "KeyPair"):
        if "Group" in noun and "ForUser" not in noun:
            kind = "group"
        elif name == "ChangePassword" or any(part in noun for part in _IAM_USER_PARTS):
            kind = "user"
        else:
            kind = "admin"
        if noun in _IAM_ENTITIES and verb == "Create":
            action = "creation"
        elif noun in _IAM_ENTITIES and verb == "Delete":
            action = "deletion"
        elif verb in ("Get", "List"):
            action = "info"
        else:
            action = "change"
        return ["iam"], [kind, action]
    if read_only or verb in _READ_VERBS:
        return ["api"], ["access"]
    if verb in _CREATE_VERBS:
        return ["api"], ["creation"]
    if verb in _DELETE_VERBS:
        return ["api"], ["deletion"]
    if read_only is False:
        return ["api"], ["change"]
    return ["api"], ["info"]


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

    event["category"], event["type"] = _categorize(name, source, ct.get("read_only"))
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


class CloudTrailLogType:
    dataset = "aws.cloudtrail"
    description = "AWS CloudTrail records (S3 Records files, NDJSON, arrays, Insights; digests skipped)"
    key_pattern = re.compile(r"AWSLogs/(?:o-[a-z0-9]+/)?\d{12}/CloudTrail(?:-Digest|-Insight)?/")

    def sniff(self, head: bytes) -> bool:
        return bool(_SNIFF_START.match(head)) and _SNIFF_MARKERS.search(head) is not None

    def records(self, stream: BinaryIO, options: ParseOptions) -> Iterator[Record | BadRecord | Skipped]:
        return iter_records(stream)

    def to_ecs(self, raw: dict[str, Any], options: ParseOptions) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise RecordError(f"expected a CloudTrail record (JSON object), got {type(raw).__name__}")
        return cloudtrail_to_ecs(raw)


LOG_TYPE = CloudTrailLogType()
