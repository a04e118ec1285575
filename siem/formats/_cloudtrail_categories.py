"""CloudTrail categorisation: ECS event.category/event.type from the API call's name and service.

Elastic's choices are reproduced for the calls its pipeline lists, by rule rather than a table
(docs/log-types/aws.cloudtrail.md, Categorisation): sign-ins and STS credential calls, IAM
principals, S3 objects and buckets, then a verb-derived type for every other API.
"""

from __future__ import annotations

import re

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


def categorize(name: str | None, source: str | None, read_only: bool | None) -> tuple[list[str], list[str]]:
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
