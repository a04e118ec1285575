"""Log shippers should run on instance profiles / task roles, not IAM user access keys.

An access key never expires unless revoked and says nothing about where it is used from, so a leaked
shipper key writes (or overwrites) logs from anywhere. This reports IAM users with an *active* access
key whose policies (inline, attached, through groups) or the log bucket's policy let them PutObject
into a log bucket.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from siem.posture import policy
from siem.posture.context import Context, pages
from siem.posture.model import Check, Outcome, error_code, failed, guard, not_applicable, passed


def _managed_document(ctx: Context, arn: str) -> dict[str, Any]:
    def fetch() -> dict[str, Any]:
        iam = ctx.client("iam")
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        return policy.document(iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"])

    return ctx.shared(f"iam-policy:{arn}", fetch)


def _identity_documents(ctx: Context, user: str) -> list[tuple[str, dict[str, Any]]]:
    """(where, document) for every policy that applies to the user: inline, attached, and via groups."""
    iam = ctx.client("iam")
    docs = []
    for name in pages(iam, "list_user_policies", "PolicyNames", UserName=user):
        docs.append(
            (f"inline {name}", policy.document(iam.get_user_policy(UserName=user, PolicyName=name)["PolicyDocument"]))
        )
    for attached in pages(iam, "list_attached_user_policies", "AttachedPolicies", UserName=user):
        docs.append((attached["PolicyName"], _managed_document(ctx, attached["PolicyArn"])))
    for group in pages(iam, "list_groups_for_user", "Groups", UserName=user):
        gname = group["GroupName"]
        for name in pages(iam, "list_group_policies", "PolicyNames", GroupName=gname):
            raw = iam.get_group_policy(GroupName=gname, PolicyName=name)["PolicyDocument"]
            docs.append((f"group {gname} inline {name}", policy.document(raw)))
        for attached in pages(iam, "list_attached_group_policies", "AttachedPolicies", GroupName=gname):
            docs.append((f"group {gname} {attached['PolicyName']}", _managed_document(ctx, attached["PolicyArn"])))
    return docs


def _bucket_policy(ctx: Context, bucket: str) -> dict[str, Any]:
    def fetch() -> dict[str, Any]:
        try:
            return policy.document(ctx.s3_for(bucket).get_bucket_policy(Bucket=bucket)["Policy"])
        except Exception as exc:
            if error_code(exc) == "NoSuchBucketPolicy":
                return {}
            raise

    return ctx.shared(f"bucket-policy:{bucket}", fetch)


def _grants_put(doc: dict[str, Any], bucket: str) -> bool:
    return any(policy.allowing(doc, "s3:PutObject", target) for target in policy.object_arns(bucket, doc))


def _masked(key_id: str) -> str:
    return f"{key_id[:4]}…{key_id[-4:]}"


def _judge(ctx: Context, user: dict[str, Any], keys: list[dict[str, Any]], buckets: list[str]) -> Outcome | None:
    name, arn = user["UserName"], user["Arn"]
    documents = _identity_documents(ctx, name)
    grants = []
    for bucket in buckets:
        via = [where for where, doc in documents if _grants_put(doc, bucket)]
        bucket_doc = _bucket_policy(ctx, bucket)
        if any(
            arn in policy.principals(s)
            for target in policy.object_arns(bucket, bucket_doc)
            for s in policy.allowing(bucket_doc, "s3:PutObject", target)
        ):
            via.append("bucket policy")
        if via:
            grants.append(f"s3:PutObject on {bucket} via {', '.join(via)}")
    if not grants:
        return None
    iam = ctx.client("iam")
    used = []
    for key in keys:
        last = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"]).get("AccessKeyLastUsed", {})
        when = last.get("LastUsedDate")
        used.append(
            f"{_masked(key['AccessKeyId'])} last used {when:%Y-%m-%d} ({last.get('ServiceName')})"
            if when
            else f"{_masked(key['AccessKeyId'])} never used"
        )
    return failed(f"user {name}", f"active key(s) {'; '.join(used)}; {'; '.join(grants)}")


def log_writer_access_keys(ctx: Context, _: None) -> Iterator[Outcome]:
    buckets = ctx.log_buckets()
    if not buckets:
        yield not_applicable(f"account {ctx.account_id}", "no log bucket known (pass --bucket)")
        return
    iam = ctx.client("iam")
    writers = 0
    for user in pages(iam, "list_users", "Users"):
        name = user["UserName"]

        def look(user: dict[str, Any] = user, name: str = name) -> Outcome | None:
            keys = [
                k for k in pages(iam, "list_access_keys", "AccessKeyMetadata", UserName=name) if k["Status"] == "Active"
            ]
            return _judge(ctx, user, keys, buckets) if keys else None

        outcome = guard(f"user {name}", look)
        if outcome is not None:
            writers += 1
            yield outcome
    if not writers:
        yield passed(
            f"account {ctx.account_id}", f"no IAM user with an active access key can write to {', '.join(buckets)}"
        )


CHECKS = (
    Check(
        "iam.log_writer_access_keys",
        "No IAM user access keys write to the log bucket",
        "medium",
        "account",
        "An IAM user key is valid until revoked and hides where it is used from; log shippers (fluentd, agents) "
        "should use an instance profile or task role scoped to PutObject on their prefix.",
        "Give the shipper's EC2 instance profile / ECS task role / IRSA role s3:PutObject on "
        "arn:aws:s3:::BUCKET/PREFIX/*, remove the key from its config, then aws iam delete-access-key "
        "--user-name USER --access-key-id KEY",
        log_writer_access_keys,
    ),
)
