"""Two AWS accounts on moto's server for the posture tests: one that keeps every log, one that does not.

Each account is a real moto account reached with STS AssumeRole credentials (moto maps the temporary
key to the role's account), so the two never see each other's trails, buckets or IAM users. The
builders use only ordinary write APIs; what the posture command reads back is moto's own state.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from siem.cli import main

COMPLIANT = "111111111111"
NONCOMPLIANT = "222222222222"
REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "detections" / "aws" / "s3"  # the shipped log-bucket rules (loading all 38 costs seconds)
ALL_CHECK_IDS = {
    "s3.versioning",
    "s3.object_ownership",
    "s3.public_access_block",
    "s3.default_encryption",
    "s3.lifecycle_no_expiration",
    "s3.policy_delete_grant",
    "s3.delete_alert",
    "cloudtrail.multi_region",
    "cloudtrail.log_file_validation",
    "cloudtrail.s3_data_events",
    "cloudtrail.no_data_event_loop",
    "elb.access_logs",
    "waf.logging",
    "eks.control_plane_logging",
    "eks.audit_logs_to_s3",
    "vpc.flow_logs",
    "route53.resolver_query_logging",
    "logs.retention",
    "iam.log_writer_access_keys",
}
CT, APP = f"ct-logs-{COMPLIANT}", f"app-logs-{COMPLIANT}"
BAD, PLAIN = f"logs-bad-{NONCOMPLIANT}", f"evidence-store-{NONCOMPLIANT}"


def run_posture(endpoint: str, env: dict[str, str], *args: str) -> tuple[int, str]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ENDPOINT_URL", endpoint)
        for name, value in env.items():
            mp.setenv(name, value)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["posture", *args])
    return code, out.getvalue()


def assume(account: str) -> dict[str, str]:
    """Environment variables (the default credential chain) for a session in ``account``."""
    creds = boto3.client("sts", region_name="us-east-1").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/posture-tests", RoleSessionName="posture-tests"
    )["Credentials"]
    return {
        "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
        "AWS_SESSION_TOKEN": creds["SessionToken"],
    }


def _session(env: dict[str, str], region: str = "us-east-1") -> boto3.Session:
    return boto3.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env.get("AWS_SESSION_TOKEN"),
        region_name=region,
    )


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _hardened_bucket(s3: Any, name: str, account: str) -> None:
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_ownership_controls(
        Bucket=name, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    )
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
        },
    )
    s3.put_bucket_lifecycle_configuration(  # transitions and tidying only: nothing expires a log version
        Bucket=name,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "archive",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "Transitions": [{"Days": 90, "StorageClass": "GLACIER"}],
                    "Expiration": {"ExpiredObjectDeleteMarker": True},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                }
            ]
        },
    )
    s3.put_bucket_policy(
        Bucket=name,
        Policy=_policy(
            {
                "Sid": "CloudTrailWrites",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{name}/AWSLogs/{account}/*",
            },
            {
                "Sid": "BreakGlassOnly",  # delete granted to one named role: not broad
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account}:role/log-break-glass"},
                "Action": ["s3:DeleteObject", "s3:DeleteObjectVersion"],
                "Resource": f"arn:aws:s3:::{name}/*",
            },
        ),
    )


def _vpc_logging(session: boto3.Session, region: str, bucket: str) -> None:
    ec2 = session.client("ec2", region_name=region)
    vpcs = [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]]
    ec2.create_flow_logs(
        ResourceIds=vpcs,
        ResourceType="VPC",
        TrafficType="ALL",
        LogDestinationType="s3",
        LogDestination=f"arn:aws:s3:::{bucket}",
    )
    resolver = session.client("route53resolver", region_name=region)
    config = resolver.create_resolver_query_log_config(
        Name="dns", DestinationArn=f"arn:aws:s3:::{bucket}", CreatorRequestId=f"dns-{region}"
    )["ResolverQueryLogConfig"]["Id"]
    for vpc in vpcs:
        resolver.associate_resolver_query_log_config(ResolverQueryLogConfigId=config, ResourceId=vpc)


def _subnets(session: boto3.Session) -> tuple[str, list[str]]:
    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"us-east-1{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in ((1, "a"), (2, "b"))
    ]
    return vpc, subnets


def _web_acl(waf: Any, name: str, scope: str) -> str:
    return waf.create_web_acl(
        Name=name,
        Scope=scope,
        DefaultAction={"Allow": {}},
        VisibilityConfig={"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": name},
    )["Summary"]["ARN"]


def _user_with_key(iam: Any, name: str, inline: str | None = None, active: bool = True) -> dict[str, str]:
    iam.create_user(UserName=name)
    if inline:
        iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=inline)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    if not active:
        iam.update_access_key(UserName=name, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    return key


def build_compliant(env: dict[str, str]) -> dict[str, Any]:
    """Everything on: the account a responder hopes to find. Regions us-east-1 and eu-west-1."""
    session, account = _session(env), COMPLIANT
    s3 = session.client("s3")
    trail_bucket, app_bucket, audit_bucket = f"ct-logs-{account}", f"app-logs-{account}", f"audit-logs-{account}"
    for name in (trail_bucket, app_bucket, audit_bucket):
        _hardened_bucket(s3, name, account)

    ct = session.client("cloudtrail")
    ct.create_trail(Name="main-trail", S3BucketName=trail_bucket, IsMultiRegionTrail=True, EnableLogFileValidation=True)
    ct.put_event_selectors(  # data events on the other log buckets, never on its own
        TrailName="main-trail",
        AdvancedEventSelectors=[
            {
                "Name": "log buckets",
                "FieldSelectors": [
                    {"Field": "eventCategory", "Equals": ["Data"]},
                    {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
                    {
                        "Field": "resources.ARN",
                        "StartsWith": [f"arn:aws:s3:::{app_bucket}/", f"arn:aws:s3:::{audit_bucket}/"],
                    },
                ],
            }
        ],
    )
    ct.start_logging(Name="main-trail")
    ct.create_trail(Name="data-trail", S3BucketName=audit_bucket, EnableLogFileValidation=True)
    ct.put_event_selectors(  # the main trail's bucket, watched from a trail that delivers elsewhere
        TrailName="data-trail",
        EventSelectors=[
            {
                "ReadWriteType": "WriteOnly",
                "IncludeManagementEvents": False,
                "DataResources": [{"Type": "AWS::S3::Object", "Values": [f"arn:aws:s3:::{trail_bucket}/"]}],
            }
        ],
    )
    ct.start_logging(Name="data-trail")

    vpc, subnets = _subnets(session)
    elbv2 = session.client("elbv2")
    for name, kind in (("web", "application"), ("tcp", "network")):
        arn = elbv2.create_load_balancer(Name=name, Subnets=subnets, Type=kind)["LoadBalancers"][0]["LoadBalancerArn"]
        elbv2.modify_load_balancer_attributes(
            LoadBalancerArn=arn,
            Attributes=[
                {"Key": "access_logs.s3.enabled", "Value": "true"},
                {"Key": "access_logs.s3.bucket", "Value": app_bucket},
            ],
        )
    elb = session.client("elb")
    elb.create_load_balancer(
        LoadBalancerName="legacy",
        Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 80}],
        AvailabilityZones=["us-east-1a"],
    )
    elb.modify_load_balancer_attributes(
        LoadBalancerName="legacy",
        LoadBalancerAttributes={"AccessLog": {"Enabled": True, "S3BucketName": app_bucket, "EmitInterval": 5}},
    )

    waf = session.client("wafv2")
    for name, scope in (("site", "REGIONAL"), ("cdn", "CLOUDFRONT")):
        arn = _web_acl(waf, name, scope)
        waf.put_logging_configuration(
            LoggingConfiguration={"ResourceArn": arn, "LogDestinationConfigs": [f"arn:aws:s3:::aws-waf-logs-{name}"]}
        )

    eks, logs = session.client("eks"), session.client("logs")
    for cluster in ("prod", "batch"):
        eks.create_cluster(
            name=cluster,
            roleArn=f"arn:aws:iam::{account}:role/eks",
            resourcesVpcConfig={"subnetIds": subnets},
            logging={"clusterLogging": [{"types": ["api", "audit", "authenticator"], "enabled": True}]},
        )
        logs.create_log_group(logGroupName=f"/aws/eks/{cluster}/cluster")
        logs.put_retention_policy(logGroupName=f"/aws/eks/{cluster}/cluster", retentionInDays=400)
    stream = session.client("firehose").create_delivery_stream(
        DeliveryStreamName="eks-audit",
        ExtendedS3DestinationConfiguration={
            "RoleARN": f"arn:aws:iam::{account}:role/firehose",
            "BucketARN": f"arn:aws:s3:::{app_bucket}",
            "Prefix": "eks/",
        },
    )["DeliveryStreamARN"]
    logs.put_subscription_filter(  # prod: streamed to S3 through Firehose
        logGroupName="/aws/eks/prod/cluster",
        filterName="to-s3",
        filterPattern="",
        destinationArn=stream,
        roleArn=f"arn:aws:iam::{account}:role/cwl-to-firehose",
    )
    now_ms = int(time.time() * 1000)
    logs.create_export_task(  # batch: exported to S3 by a recurring export task (yesterday's run)
        logGroupName="/aws/eks/batch/cluster", fromTime=now_ms - 86_400_000, to=now_ms, destination=app_bucket
    )
    logs.create_log_group(logGroupName="/app/orders")  # no retention policy: never expires

    for region in ("us-east-1", "eu-west-1"):
        _vpc_logging(session, region, app_bucket)

    iam = session.client("iam")
    artifacts = _policy({"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::build-artifacts/*"})
    _user_with_key(iam, "ci-deployer", artifacts)  # an active key, but not a log writer
    ships = _policy({"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{app_bucket}/*"})
    _user_with_key(iam, "retired-shipper", ships, active=False)  # a log writer whose key is deactivated
    return {"buckets": [trail_bucket, app_bucket], "vpc": vpc}


def build_noncompliant(env: dict[str, str]) -> dict[str, Any]:
    """Every point missed at least once, each in the way the check names. Region us-east-1."""
    session, account = _session(env), NONCOMPLIANT
    s3 = session.client("s3")
    bucket, plain = f"logs-bad-{account}", f"evidence-store-{account}"
    for name in (bucket, plain, f"elsewhere-{account}"):
        s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    s3.put_bucket_ownership_controls(Bucket=plain, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]})
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={"BlockPublicAcls": True})
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [
                {"ID": "rotate", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 90}},
                {
                    "ID": "old-versions",
                    "Status": "Enabled",
                    "Filter": {"Prefix": "AWSLogs/"},
                    "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
                },
            ]
        },
    )
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=_policy(
            {
                "Sid": "AnyoneCleansUp",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:Delete*",
                "Resource": f"arn:aws:s3:::{bucket}/*",
            }
        ),
    )
    s3.put_bucket_policy(
        Bucket=plain,
        Policy=_policy(
            {
                "Sid": "WholeAccount",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{plain}", f"arn:aws:s3:::{plain}/*"],
            }
        ),
    )

    ct = session.client("cloudtrail")
    ct.create_trail(Name="solo-trail", S3BucketName=bucket)  # one region, no validation, never started
    ct.put_event_selectors(
        TrailName="solo-trail",
        EventSelectors=[
            {"ReadWriteType": "All", "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}]}
        ],
    )

    vpc, subnets = _subnets(session)
    session.client("elbv2").create_load_balancer(Name="web", Subnets=subnets, Type="application")
    elb = session.client("elb")
    elb.create_load_balancer(
        LoadBalancerName="legacy",
        Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 80}],
        AvailabilityZones=["us-east-1a"],
    )
    elb.modify_load_balancer_attributes(
        LoadBalancerName="legacy",
        LoadBalancerAttributes={"AccessLog": {"Enabled": True, "S3BucketName": f"elsewhere-{account}"}},
    )
    _web_acl(session.client("wafv2"), "site", "REGIONAL")

    eks, logs = session.client("eks"), session.client("logs")
    eks.create_cluster(
        name="dev",
        roleArn=f"arn:aws:iam::{account}:role/eks",
        resourcesVpcConfig={"subnetIds": subnets},
        logging={"clusterLogging": [{"types": ["api"], "enabled": True}]},
    )
    eks.create_cluster(
        name="prod",
        roleArn=f"arn:aws:iam::{account}:role/eks",
        resourcesVpcConfig={"subnetIds": subnets},
        logging={"clusterLogging": [{"types": ["audit", "authenticator"], "enabled": True}]},
    )
    logs.create_log_group(logGroupName="/aws/eks/prod/cluster")
    logs.put_retention_policy(logGroupName="/aws/eks/prod/cluster", retentionInDays=30)
    logs.create_export_task(  # one export, a month ago: not a path that keeps today's audit log
        logGroupName="/aws/eks/prod/cluster",
        fromTime=0,
        to=int(time.time() * 1000) - 30 * 86_400_000,
        destination=bucket,
    )

    ec2 = session.client("ec2")
    default_vpc = next(v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if v["VpcId"] != vpc)
    ec2.create_flow_logs(
        ResourceIds=[vpc],
        ResourceType="VPC",
        TrafficType="REJECT",
        LogDestinationType="s3",
        LogDestination=f"arn:aws:s3:::{bucket}",
    )

    iam = session.client("iam")
    ships = _policy({"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": f"arn:aws:s3:::{bucket}/fluentd/*"})
    key = _user_with_key(iam, "fluentd", ships)
    shipper = boto3.Session(
        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"], region_name="us-east-1"
    )
    shipper.client("s3").put_object(Bucket=bucket, Key="fluentd/syslog/2026/11/29/0000_0.json", Body=b"{}\n")
    iam.create_group(GroupName="ops")
    full = iam.create_policy(
        PolicyName="everything-s3", PolicyDocument=_policy({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    )["Policy"]["Arn"]
    iam.attach_group_policy(GroupName="ops", PolicyArn=full)
    _user_with_key(iam, "alice")
    iam.add_user_to_group(GroupName="ops", UserName="alice")
    return {"buckets": [bucket, plain], "vpc": vpc, "default_vpc": default_vpc}


_BUILT: dict[tuple[str, str], dict[str, Any]] = {}


def account(endpoint: str, which: str) -> dict[str, Any]:
    """The account's credentials and what was built, building it on first use (once per moto server)."""
    key = (endpoint, which)
    if key not in _BUILT:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("AWS_ENDPOINT_URL", endpoint)
            # moto fills each new account's EC2 region with ~1300 sample AMIs (seconds per region); none are used
            mp.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
            env = assume(which)
            built = (build_compliant if which == COMPLIANT else build_noncompliant)(env)
        _BUILT[key] = {"env": env, **built}
    return _BUILT[key]
