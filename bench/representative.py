"""Representative benchmark inputs: logs shaped like the real samples, with every field varying.

Repeating a handful of sample lines flatters a parser (its caches hit every time; one in three ALB
sample lines is a cheap non-HTTP line). These generators write what a busy producer writes: full
HTTP/HTTPS/h2 ALB access lines (IPv4 clients from many networks and a few IPv6 ones, increasing
timestamps, many user agents, paths, queries with percent escapes, status codes, target groups,
TLS fields, some requests with no target), VPC flow logs in the default v2 layout and in a v5
custom layout with its header line, CloudTrail read-only calls, and nginx/Apache combined access
lines. Deterministic (seeded) so runs compare.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "curl/8.5.0",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "ELB-HealthChecker/2.0",
    "Amazon CloudFront",
    "-",
)
_PATHS = (
    "/",
    "/index.html",
    "/api/v1/users/{n}",
    "/api/v1/orders?page={n}&sort=desc",
    "/static/js/app.{n}.js",
    "/static/css/site.css",
    "/images/products/{n}.jpg",
    "/search?q=running%20shoes&size={n}",
    "/login",
    "/health",
    "/graphql",
    "/wp-login.php",
    "/.env",
    "/api/v2/items/{n}?fields=id,name,price",
)
_METHODS = ("GET",) * 12 + ("POST",) * 3 + ("PUT", "DELETE", "HEAD", "OPTIONS", "PATCH")
_STATUSES = (200,) * 20 + (201, 204, 301, 302, 304, 304, 400, 401, 403, 404, 404, 404, 429, 500, 502, 503, 504)
_ACTIONS = ('"forward"',) * 6 + ('"authenticate,forward"', '"waf,forward"', '"redirect"', '"fixed-response"')
_CIPHERS = (
    "ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2",
    "TLS_AES_128_GCM_SHA256 TLSv1.3",
    "ECDHE-RSA-AES256-GCM-SHA384 TLSv1.2",
)


def _client(r: random.Random) -> str:
    if r.random() < 0.02:  # dual-stack load balancers see some IPv6 clients
        return f"[2001:db8:{r.randrange(65536):x}::{r.randrange(65536):x}]:{r.randrange(1024, 65536)}"
    return (
        f"{r.randrange(1, 224)}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}:{r.randrange(1024, 65536)}"
    )


def alb_lines(count: int, seed: int = 7) -> list[bytes]:
    """Full ALB access lines as AWS writes them today (30 fields)."""
    r = random.Random(seed)
    start = datetime(2025, 6, 1, tzinfo=UTC)
    out = []
    for i in range(count):
        kind = r.choice(("https", "https", "https", "http", "h2"))
        received = start + timedelta(milliseconds=i * 7 + r.randrange(5))
        ts = received.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"
        created = (received - timedelta(milliseconds=r.randrange(1, 900))).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        status = r.choice(_STATUSES)
        no_target = status in (460, 502, 503) and r.random() < 0.5
        target = "-" if no_target else f"10.0.{r.randrange(256)}.{r.randrange(1, 255)}:{r.choice((80, 8080, 443))}"
        target_status = "-" if no_target else str(status)
        scheme, port = ("http", 80) if kind == "http" else ("https", 443)
        host = f"{r.choice(('www', 'api', 'shop', 'static'))}.example{r.randrange(5)}.com"
        path = r.choice(_PATHS).format(n=r.randrange(100000))
        tls = "- -" if kind == "http" else r.choice(_CIPHERS)
        times = " ".join(f"{r.random() * w:.3f}" for w in (0.002, 0.4, 0.001))
        if no_target:
            times = "0.001 -1 -1"
        group = f"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg-{r.randrange(12)}/73e2d6bc24d8a067"
        out.append(
            (
                f"{kind} {ts} app/prod-web/50dc6c495c0c9188 {_client(r)} {target} {times} {status} {target_status} "
                f"{r.randrange(120, 4000)} {r.randrange(0, 250000)} "
                f'"{r.choice(_METHODS)} {scheme}://{host}:{port}{path} '
                f'HTTP/{r.choice(("1.1", "1.1", "2.0"))}" "{r.choice(_AGENTS)}" {tls} {group} '
                f'"Root=1-{int(received.timestamp()):08x}-{r.getrandbits(96):024x}" "{host}" '
                f'"arn:aws:acm:us-east-1:123456789012:certificate/{r.getrandbits(64):016x}" {r.randrange(1, 50)} '
                f'{created}Z {r.choice(_ACTIONS)} "-" "-" "{target}" "{target_status}" "-" "-" '
                f"TID_{r.getrandbits(64):016x}"
            ).encode()
        )
    return out


_V5_HEADER = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action "
    "log-status vpc-id subnet-id instance-id tcp-flags type pkt-srcaddr pkt-dstaddr region az-id "
    "pkt-src-aws-service pkt-dst-aws-service flow-direction traffic-path"
)


def _private(r: random.Random) -> str:
    return f"10.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"


def _public(r: random.Random) -> str:
    return f"{r.randrange(1, 224)}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"


def vpcflow_lines(count: int, version: int, seed: int = 11) -> list[bytes]:
    """VPC flow records: the default v2 layout (no header), or a v5 custom layout after its header."""
    r = random.Random(seed)
    start = 1748736000
    out = [_V5_HEADER.encode()] if version == 5 else []
    for i in range(count - len(out)):
        first = start + i // 50
        inbound = r.random() < 0.5
        src, dst = (_public(r), _private(r)) if inbound else (_private(r), _public(r))
        sport, dport = (
            (r.randrange(1024, 65536), r.choice((443, 80, 22, 3389, 53, 8080)))
            if inbound
            else (
                r.choice((443, 80, 53)),
                r.randrange(1024, 65536),
            )
        )
        proto = r.choice((6, 6, 6, 17, 1))
        action = "ACCEPT" if r.random() < 0.85 else "REJECT"
        base = (
            f"{version} 123456789012 eni-{r.getrandbits(68):017x} {src} {dst} {sport} {dport} {proto} "
            f"{r.randrange(1, 500)} {r.randrange(40, 900000)} {first} {first + r.randrange(1, 60)} {action} OK"
        )
        if version == 5:
            service = r.choice(("-", "-", "-", "AMAZON", "S3", "CLOUDFRONT"))
            base += (
                f" vpc-{r.getrandbits(68):017x} subnet-{r.getrandbits(68):017x} i-{r.getrandbits(68):017x} "
                f"{r.choice((2, 18, 19, 3, 0))} IPv4 {src} {dst} us-east-1 use1-az{r.randrange(1, 7)} "
                f"{service} - {'ingress' if inbound else 'egress'} {r.randrange(1, 9)}"
            )
        out.append(base.encode())
    return out


# CloudTrail management events of a working account are mostly reads: services and applications
# describing, listing and getting (and STS/KMS calls made on their behalf). (event source, name,
# request parameters) of the common ones; {n} varies.
_READS = (
    (
        "sts.amazonaws.com",
        "AssumeRole",
        {"roleArn": "arn:aws:iam::123456789012:role/app-{n}", "roleSessionName": "s{n}"},
    ),
    ("sts.amazonaws.com", "GetCallerIdentity", None),
    ("ec2.amazonaws.com", "DescribeInstances", {"instancesSet": {}, "filterSet": {}}),
    ("ec2.amazonaws.com", "DescribeSecurityGroups", {"securityGroupIdSet": {}, "filterSet": {}}),
    ("ec2.amazonaws.com", "DescribeVolumes", {"volumeSet": {}, "filterSet": {}}),
    ("s3.amazonaws.com", "ListBuckets", {"Host": "s3.amazonaws.com"}),
    (
        "s3.amazonaws.com",
        "GetBucketAcl",
        {"bucketName": "app-data-{n}", "Host": "app-data-{n}.s3.amazonaws.com", "acl": ""},
    ),
    ("s3.amazonaws.com", "GetBucketLocation", {"bucketName": "app-data-{n}", "location": ""}),
    ("kms.amazonaws.com", "Decrypt", {"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}),
    ("kms.amazonaws.com", "GenerateDataKey", {"keyId": "alias/app-{n}", "keySpec": "AES_256"}),
    ("ssm.amazonaws.com", "GetParameter", {"name": "/app/{n}/db-host", "withDecryption": False}),
    ("ssm.amazonaws.com", "GetParameters", {"names": ["/app/{n}/a", "/app/{n}/b"], "withDecryption": True}),
    ("logs.amazonaws.com", "DescribeLogGroups", {"limit": 50}),
    ("iam.amazonaws.com", "GetRole", {"roleName": "app-{n}"}),
    ("iam.amazonaws.com", "ListRoles", {"maxItems": 100}),
    ("lambda.amazonaws.com", "ListFunctions20150331", {"maxItems": 50}),
    ("monitoring.amazonaws.com", "GetMetricData", {"startTime": "x", "endTime": "y"}),
    ("dynamodb.amazonaws.com", "DescribeTable", {"tableName": "orders-{n}"}),
    ("elasticloadbalancing.amazonaws.com", "DescribeTargetHealth", {"targetGroupArn": "tg-{n}"}),
    ("autoscaling.amazonaws.com", "DescribeAutoScalingGroups", {"maxRecords": 100}),
    ("secretsmanager.amazonaws.com", "GetSecretValue", {"secretId": "app/{n}/db"}),
    ("ecr.amazonaws.com", "GetAuthorizationToken", None),
)
_SDKS = (
    "aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5",
    "Boto3/1.34.144 md/Botocore#1.34.144 ua/2.0 os/linux",
    "aws-sdk-java/2.26.20 Linux/5.10",
    "aws-cli/2.17.43 md/awscrt#0.21.2 os/linux",
    "console.amazonaws.com",
)


def _assumed_role(r: random.Random, n: int, start: datetime) -> dict:
    role = r.choice(("app", "ec2-instance", "AWSReservedSSO_ReadOnly_0123456789abcdef", "eks-node"))
    session = r.choice((f"i-{r.getrandbits(64):016x}", f"user{n}@example.com", f"pod-{n}"))
    issuer = {
        "type": "Role",
        "principalId": "AROAEXAMPLE",
        "accountId": "123456789012",
        "arn": f"arn:aws:iam::123456789012:role/{role}-{n}",
        "userName": f"{role}-{n}",
    }
    return {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLE{r.getrandbits(40):010X}:{session}",
        "arn": f"arn:aws:sts::123456789012:assumed-role/{role}-{n}/{session}",
        "accountId": "123456789012",
        "accessKeyId": f"ASIAEXAMPLE{r.getrandbits(36):09X}",
        "sessionContext": {
            "sessionIssuer": issuer,
            "attributes": {"creationDate": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "mfaAuthenticated": "false"},
        },
    }


def cloudtrail_read_records(count: int, seed: int = 13) -> list[dict]:
    """CloudTrail read-only management events as AWS writes them: ``count`` records, varied actors
    (instance and application roles, SSO users, AWS services), sources, regions and parameters."""
    r = random.Random(seed)
    start = datetime(2025, 6, 1, tzinfo=UTC)
    out = []
    for i in range(count):
        source, name, params = _READS[i % len(_READS)] if i < len(_READS) else r.choice(_READS)
        n = r.randrange(40)
        ip = f"10.{r.randrange(8)}.{r.randrange(256)}.{r.randrange(1, 255)}" if r.random() < 0.7 else _public(r)
        kind = r.random()
        if kind < 0.2 and name in ("Decrypt", "GenerateDataKey", "AssumeRole"):  # on a service's behalf
            identity: dict = {"type": "AWSService", "invokedBy": "lambda.amazonaws.com"}
            ip = "lambda.amazonaws.com"
        elif kind < 0.55:  # CI users and older applications with access keys
            identity = {
                "type": "IAMUser",
                "principalId": f"AIDAEXAMPLE{r.getrandbits(40):010X}",
                "arn": f"arn:aws:iam::123456789012:user/ci-deployer-{n}",
                "accountId": "123456789012",
                "accessKeyId": f"AKIAEXAMPLE{r.getrandbits(36):09X}",
                "userName": f"ci-deployer-{n}",
            }
        else:  # instance, pod and SSO roles
            identity = _assumed_role(r, n, start)
        text = json.dumps(params).replace("{n}", str(n)) if params is not None else "null"
        out.append(
            {
                "eventVersion": "1.09",
                "userIdentity": identity,
                "eventTime": (start + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "eventSource": source,
                "eventName": name,
                "awsRegion": r.choice(("us-east-1", "us-east-1", "eu-west-1", "ap-northeast-1")),
                "sourceIPAddress": ip,
                "userAgent": r.choice(_SDKS),
                "requestParameters": json.loads(text),
                "responseElements": None,
                "requestID": f"{r.getrandbits(128):032x}",
                "eventID": f"{r.getrandbits(128):032x}",
                "readOnly": True,
                "eventType": "AwsApiCall",
                "managementEvent": True,
                "recipientAccountId": "123456789012",
                "eventCategory": "Management",
            }
        )
    return out


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_REFERRERS = (
    "-",
    "-",
    "-",
    "https://www.example.com/",
    "https://www.google.com/search?q={n}",
    "https://news.example.org/a/{n}",
)
# What front-end web servers also log: IPv6 clients, proxies' address lists, vhost prefixes, escaped
# quotes in scanners' requests, requests that never were HTTP (2% of lines, as on a public server)
_ODD_ACCESS = (
    '2001:db8::{n:x} - - [{t}] "GET / HTTP/1.1" 200 512 "-" "curl/8.5.0"',
    '10.0.0.2, 10.0.0.1, 203.0.113.{o} - - [{t}] "GET /x HTTP/1.1" 200 12 "-" "curl/8.5.0"',
    'www.example.com 198.51.100.{o} - - [{t}] "GET /vh HTTP/1.1" 200 99 "-" "curl/8.5.0"',
    '198.51.100.{o} - - [{t}] "GET /say\\"hi\\" HTTP/1.1" 400 0 "-" "-"',
    '198.51.100.{o} - - [{t}] "-" 408 - "-" "-"',
    '198.51.100.{o} - - [{t}] "\\x16\\x03\\x01" 400 157 "-" "-"',
)


def access_lines(count: int, seed: int = 17) -> list[bytes]:
    """nginx/Apache `combined` access lines: varied IPv4 clients, increasing times, methods, paths
    with queries and percent escapes, statuses, sizes, referrers and agents, 2% odd lines."""
    r = random.Random(seed)
    start = datetime(2025, 6, 1, tzinfo=UTC)
    out = []
    for i in range(count):
        t = start + timedelta(milliseconds=i * 300 + r.randrange(300))
        stamp = f"{t.day:02d}/{_MONTHS[t.month - 1]}/{t.year}:{t:%H:%M:%S} +0000"
        n, o = r.randrange(100000), r.randrange(1, 255)
        if r.random() < 0.02:
            out.append(r.choice(_ODD_ACCESS).format(n=n, o=o, t=stamp).encode())
            continue
        user = "-" if r.random() < 0.9 else f"user{n % 50}"
        status = r.choice(_STATUSES)
        size = 0 if status in (204, 304) else r.randrange(250000)
        out.append(
            (
                f"{_public(r)} - {user} [{stamp}] "
                f'"{r.choice(_METHODS)} {r.choice(_PATHS).format(n=n)} HTTP/1.1" {status} {size} '
                f'"{r.choice(_REFERRERS).format(n=n)}" "{r.choice(_AGENTS)}"'
            ).encode()
        )
    return out
