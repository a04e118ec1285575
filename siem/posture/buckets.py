"""The log bucket itself: a log that can be overwritten, expired or deleted is not evidence.

Each check is called once per log bucket (``--bucket``, or every bucket a trail delivers to).
"""

from __future__ import annotations

from collections.abc import Iterator

from siem.posture import policy
from siem.posture.context import Context
from siem.posture.model import Check, Outcome, error_code, failed, passed

_PAB_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
_DELETE_ACTIONS = ("s3:DeleteObject", "s3:DeleteObjectVersion")


def versioning(ctx: Context, bucket: str) -> Iterator[Outcome]:
    status = ctx.s3_for(bucket).get_bucket_versioning(Bucket=bucket).get("Status")
    if status == "Enabled":
        yield passed(bucket, "versioning is Enabled")
    else:
        yield failed(bucket, f"versioning is {status or 'never enabled'}: an overwrite or delete loses the log")


def object_ownership(ctx: Context, bucket: str) -> Iterator[Outcome]:
    try:
        rules = ctx.s3_for(bucket).get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    except Exception as exc:
        if error_code(exc) != "OwnershipControlsNotFoundError":
            raise
        rules = []
    setting = rules[0]["ObjectOwnership"] if rules else "ObjectWriter (no ownership controls)"
    if setting == "BucketOwnerEnforced":
        yield passed(bucket, "Object Ownership is BucketOwnerEnforced (ACLs disabled)")
    else:
        yield failed(bucket, f"Object Ownership is {setting}: objects AWS services write may not belong to you")


def public_access_block(ctx: Context, bucket: str) -> Iterator[Outcome]:
    try:
        config = ctx.s3_for(bucket).get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    except Exception as exc:
        if error_code(exc) != "NoSuchPublicAccessBlockConfiguration":
            raise
        config = {}
    off = [flag for flag in _PAB_FLAGS if not config.get(flag)]
    if off:
        yield failed(bucket, f"public access block not fully on: {', '.join(off)} off")
    else:
        yield passed(bucket, "all four public access block settings are on")


def default_encryption(ctx: Context, bucket: str) -> Iterator[Outcome]:
    try:
        rules = ctx.s3_for(bucket).get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    except Exception as exc:
        if error_code(exc) != "ServerSideEncryptionConfigurationNotFoundError":
            raise
        rules = []
    algorithms = [r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for r in rules]
    algorithms = [a for a in algorithms if a]
    if algorithms:
        yield passed(bucket, f"default encryption {', '.join(algorithms)}")
    else:
        yield failed(bucket, "no default encryption configured")


def lifecycle_no_expiration(ctx: Context, bucket: str) -> Iterator[Outcome]:
    try:
        rules = ctx.s3_for(bucket).get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    except Exception as exc:
        if error_code(exc) != "NoSuchLifecycleConfiguration":
            raise
        rules = []
    expiring = []
    for rule in rules:
        if rule.get("Status") != "Enabled":
            continue
        name = rule.get("ID") or "(unnamed rule)"
        current = rule.get("Expiration") or {}
        if "Days" in current or "Date" in current:  # ExpiredObjectDeleteMarker alone only tidies markers
            expiring.append(f"{name} expires current versions")
        if rule.get("NoncurrentVersionExpiration"):
            expiring.append(f"{name} expires noncurrent versions")
    if expiring:
        yield failed(bucket, "; ".join(expiring))
    else:
        yield passed(bucket, f"{len(rules)} lifecycle rule(s), none expires log versions")


def _broad(principal: str) -> bool:
    """Anyone, or a whole account (``:root`` / a bare account id delegates to every IAM identity in it)."""
    return principal == "*" or principal.endswith(":root") or principal.isdigit()


def policy_delete_grant(ctx: Context, bucket: str) -> Iterator[Outcome]:
    try:
        raw = ctx.s3_for(bucket).get_bucket_policy(Bucket=bucket)["Policy"]
    except Exception as exc:
        if error_code(exc) != "NoSuchBucketPolicy":
            raise
        yield passed(bucket, "no bucket policy")
        return
    doc = policy.document(raw)
    granted = {
        id(s)
        for action in _DELETE_ACTIONS
        for target in policy.object_arns(bucket, doc)
        for s in policy.allowing(doc, action, target)
    }
    broad = [
        f"{policy.label(stmt, i)} grants delete to {', '.join(p for p in policy.principals(stmt) if _broad(p))}"
        for i, stmt in enumerate(policy.statements(doc))
        if id(stmt) in granted and any(_broad(p) for p in policy.principals(stmt))
    ]
    if broad:
        yield failed(bucket, "; ".join(broad))
    else:
        yield passed(bucket, "the bucket policy grants object deletion to no broad principal")


CHECKS = (
    Check(
        "s3.versioning",
        "Log bucket versioning enabled",
        "high",
        "bucket",
        "With versioning, a deleted or overwritten log object stays recoverable and the deletion itself is recorded.",
        "aws s3api put-bucket-versioning --bucket BUCKET --versioning-configuration Status=Enabled",
        versioning,
    ),
    Check(
        "s3.object_ownership",
        "Log bucket Object Ownership is BucketOwnerEnforced",
        "medium",
        "bucket",
        "Logs written by AWS services (ALB, CloudTrail) must belong to your account, or cross-account reads fail "
        "and you cannot control access to them.",
        "aws s3api put-bucket-ownership-controls --bucket BUCKET "
        "--ownership-controls 'Rules=[{ObjectOwnership=BucketOwnerEnforced}]'",
        object_ownership,
    ),
    Check(
        "s3.public_access_block",
        "Log bucket blocks public access",
        "high",
        "bucket",
        "Logs hold IPs, user names and request URLs; a public bucket leaks them and lets anyone tamper.",
        "aws s3api put-public-access-block --bucket BUCKET --public-access-block-configuration "
        "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true",
        public_access_block,
    ),
    Check(
        "s3.default_encryption",
        "Log bucket has default encryption",
        "low",
        "bucket",
        "Encryption at rest by default, so no writer can store logs unencrypted (SSE-KMS also logs key use).",
        "aws s3api put-bucket-encryption --bucket BUCKET --server-side-encryption-configuration "
        '\'{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"aws:kms"}}]}\'',
        default_encryption,
    ),
    Check(
        "s3.lifecycle_no_expiration",
        "No lifecycle rule expires log versions",
        "high",
        "bucket",
        "Responders keep finding the log they need was rotated away. Deleting logs must be a decision, not a "
        "default: transition old logs to cheaper storage classes instead of expiring them.",
        "Replace Expiration / NoncurrentVersionExpiration actions with Transitions (e.g. to GLACIER_IR or "
        "DEEP_ARCHIVE): aws s3api put-bucket-lifecycle-configuration --bucket BUCKET ...",
        lifecycle_no_expiration,
    ),
    Check(
        "s3.policy_delete_grant",
        "Bucket policy does not grant s3:DeleteObject broadly",
        "high",
        "bucket",
        "DeleteObject on the log bucket belongs to very few people; a grant to everyone or a whole account lets "
        "any compromised identity erase its tracks.",
        "Remove s3:DeleteObject / s3:DeleteObjectVersion (and s3:* / *) from Allow statements whose Principal is "
        "'*' or an account root; grant it to one named break-glass role, or add an explicit Deny.",
        policy_delete_grant,
    ),
)
