"""Representative WAF and Route 53 Resolver query logs (JSON lines), every field varying.

WAF: ALLOW/BLOCK/COUNT/CAPTCHA/CHALLENGE records from many clients (3% IPv6) and countries, header
lists of varying length, managed rule groups, rate-based rules, labels, JA3/JA4 fingerprints.
Route 53 Resolver: queries from a few thousand VPC hosts (some IPv6), popular names repeating,
A/AAAA/PTR/CNAME/TXT answers, NXDOMAIN/SERVFAIL, DNS Firewall actions. 2% of each are odd records
(a timestamp as text, a non-string header value, non-UTF-8 text, a missing member) that take the
reference mapper or become dead letters. Deterministic (seeded) so runs compare.
"""

from __future__ import annotations

import json
import random
import time

from representative import _AGENTS as _WEB_AGENTS

_AGENTS = (*_WEB_AGENTS[:6], "sqlmap/1.7")  # browsers and tools, and a scanner WAF sees
_PATHS = (
    "/",
    "/index.html",
    "/api/v1/users/{n}",
    "/api/v1/orders",
    "/static/js/app.{n}.js",
    "/login",
    "/wp-login.php",
    "/.env",
    "/graphql",
    "/search",
    "/images/p/{n}.jpg",
)
_ARGS = ("", "", "", "page={n}&sort=desc", "q=running%20shoes", "id=1%27%20OR%201=1", "token={n}")
_COUNTRIES = ("US", "DE", "FR", "GB", "CN", "RU", "BR", "IN", "JP", "NL", "-")
_ACTIONS = ("ALLOW",) * 12 + ("BLOCK",) * 4 + ("COUNT", "CAPTCHA", "CHALLENGE")
_HOSTS = ("www.example.com", "api.example.com", "shop.example.com:443", "example.org")
_MANAGED = (
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesSQLiRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
)
_LABELS = (
    "awswaf:managed:aws:core-rule-set:NoUserAgent_Header",
    "awswaf:managed:aws:sql-database:SQLi_QueryArguments",
    "awswaf:clientip:geo:country:US",
    "awswaf:clientip:geo:region:US-VA",
    "awswaf:managed:token:absent",
)


def _client(r: random.Random) -> str:
    if r.random() < 0.03:
        return f"2001:db8:{r.randrange(65536):x}::{r.randrange(65536):x}"
    return f"{r.randrange(1, 224)}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"


def _waf_record(r: random.Random, ts: int) -> dict:
    action = r.choice(_ACTIONS)
    n = r.randrange(100000)
    term = (
        "Default_Action" if action == "ALLOW" else r.choice(("AWS-" + r.choice(_MANAGED), "RateLimit", "BlockBadBots"))
    )
    headers = [{"name": "Host", "value": r.choice(_HOSTS)}, {"name": "User-Agent", "value": r.choice(_AGENTS)}]
    for name, value in (
        ("Accept", "*/*"),
        ("Accept-Encoding", "gzip, deflate, br"),
        ("Accept-Language", "en-US,en;q=0.9"),
        ("Referer", "https://www.example.com/"),
        ("Cookie", f"session={n:x}"),
        ("X-Forwarded-For", f"{_client(r)}, 10.0.{n % 256}.1"),
        ("Content-Type", "application/json"),
        ("Connection", "keep-alive"),
    ):
        if r.random() < 0.5:
            headers.append({"name": name, "value": value})
    groups = []
    for managed in r.sample(_MANAGED, r.randrange(0, 4)):
        group = {
            "ruleGroupId": "AWS#" + managed,
            "terminatingRule": None,
            "nonTerminatingMatchingRules": [],
            "excludedRules": None,
            "customerConfig": None,
        }
        if r.random() < 0.1:
            group["nonTerminatingMatchingRules"] = [
                {"ruleId": "SizeRestrictions_BODY", "action": "COUNT", "ruleMatchDetails": []}
            ]
        if action == "BLOCK" and term.endswith(managed):
            group["terminatingRule"] = {"ruleId": "SQLi_QUERYARGUMENTS", "action": "BLOCK", "ruleMatchDetails": None}
        groups.append(group)
    rec = {
        "timestamp": ts,
        "formatVersion": 1,
        "webaclId": (
            f"arn:aws:wafv2:us-east-1:123456789012:regional/webacl/prod-acl-{n % 3}/a1b2c3d4-5678-90ab-cdef-0000{n % 3}"
        ),
        "terminatingRuleId": term,
        "terminatingRuleType": "REGULAR"
        if term in ("Default_Action", "BlockBadBots")
        else ("RATE_BASED" if term == "RateLimit" else "MANAGED_RULE_GROUP"),
        "action": action,
        "terminatingRuleMatchDetails": []
        if action == "ALLOW"
        else [{"conditionType": "SQL_INJECTION", "location": "QUERY_STRING", "matchedData": ["1", "OR", "1"]}],
        "httpSourceName": "ALB",
        "httpSourceId": "123456789012-app/prod-alb/0123456789abcdef",
        "ruleGroupList": groups,
        "rateBasedRuleList": []
        if term != "RateLimit"
        else [{"rateBasedRuleId": "abc", "rateBasedRuleName": "RateLimit", "limitKey": "IP", "maxRateAllowed": 2000}],
        "nonTerminatingMatchingRules": [] if action != "COUNT" else [{"ruleId": "CountAll", "action": "COUNT"}],
        "requestHeadersInserted": None,
        "responseCodeSent": 403 if action == "BLOCK" and r.random() < 0.3 else None,
        "httpRequest": {
            "clientIp": _client(r),
            "country": r.choice(_COUNTRIES),
            "headers": headers,
            "uri": r.choice(_PATHS).format(n=n),
            "args": r.choice(_ARGS).format(n=n),
            "httpVersion": r.choice(("HTTP/1.1", "HTTP/2.0", "HTTP/1.1")),
            "httpMethod": r.choice(("GET", "GET", "GET", "POST", "PUT", "HEAD")),
            "requestId": f"1-{ts // 1000:x}-{n:024x}",
            "fragment": "",
            "scheme": "https",
            "host": r.choice(_HOSTS).partition(":")[0],
        },
        "labels": [{"name": x} for x in r.sample(_LABELS, r.randrange(0, 3))],
        "ja3Fingerprint": f"{n:032x}",
        "ja4Fingerprint": f"t13d1516h2_{n:012x}_e5627efa2ab1",
        "requestBodySize": r.choice((0, 0, 512, 8192)),
        "requestBodySizeInspectedByWAF": 0,
    }
    if action == "CAPTCHA":
        rec["captchaResponse"] = {"responseCode": 405, "solveTimestamp": 0, "failureReason": "TOKEN_MISSING"}
    if action == "CHALLENGE":
        rec["challengeResponse"] = {"responseCode": 202, "solveTimestamp": 0, "failureReason": "TOKEN_MISSING"}
    if r.random() < 0.02:  # odd records
        kind = r.randrange(5)
        if kind == 0:
            rec["timestamp"] = "soon"
        elif kind == 1:
            rec["httpRequest"]["clientIp"] = "::ffff:1.2.3.4"
        elif kind == 2:
            rec["httpRequest"]["headers"].append({"name": "X-Odd", "value": 12})
        elif kind == 3:
            rec["httpRequest"]["uri"] = "/caf\u00e9/\ud83d\ude00"
        else:
            del rec["httpRequest"]
    return rec


_QNAMES = (
    "www.example.com.",
    "api.internal.corp.",
    "s3.us-east-1.amazonaws.com.",
    "ec2.us-east-1.amazonaws.com.",
    "sts.amazonaws.com.",
    "c2.evil.example.",
    "ntp.ubuntu.com.",
    "169.254.169.254.in-addr.arpa.",
    "{n}.cdn.example.net.",
    "ip-10-0-{a}-{b}.ec2.internal.",
    "{b}.{a}.0.10.in-addr.arpa.",
)
_QTYPES = ("A",) * 6 + ("AAAA",) * 3 + ("PTR", "CNAME", "TXT", "MX", "SRV")
_RCODES = ("NOERROR",) * 8 + ("NXDOMAIN", "NXDOMAIN", "SERVFAIL", "REFUSED")


def _r53_record(r: random.Random, ts: int) -> dict:
    """A query as a VPC's resolver logs it: most queries from a few thousand hosts, popular names
    repeating (Zipf-like), the rest varied."""
    n = int(r.paretovariate(0.8)) % 5000 if r.random() < 0.7 else r.randrange(100000)
    a, b = (n * 7) % 256, (n * 13) % 254 + 1
    host = r.randrange(2000)
    name = r.choice(_QNAMES).format(n=n, a=a, b=b)
    qtype = "PTR" if "in-addr" in name else r.choice(_QTYPES)
    rcode = r.choice(_RCODES)
    answers = []
    if rcode == "NOERROR":
        for _ in range(r.randrange(0, 4)):
            if qtype == "A":
                answers.append(
                    {"Rdata": f"{r.randrange(1, 224)}.{r.randrange(256)}.{a}.{b}", "Type": "A", "Class": "IN"}
                )
            elif qtype == "AAAA":
                answers.append({"Rdata": f"2600:1f18:{a:x}::{b:x}", "Type": "AAAA", "Class": "IN"})
            elif qtype == "PTR":
                answers.append({"Rdata": f"ip-10-0-{a}-{b}.ec2.internal.", "Type": "PTR", "Class": "IN"})
            else:
                answers.append({"Rdata": f"edge-{n}.example.net.", "Type": "CNAME", "Class": "IN"})
    src = f"10.0.{host // 250}.{host % 250 + 1}" if host % 10 else f"fd00:ec2::{host:x}"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts // 1000))
    rec = {
        "version": "1.100000",
        "account_id": "123456789012",
        "region": "us-east-1",
        "vpc_id": f"vpc-0{n % 4}e31a7c",
        "query_timestamp": stamp,
        "query_name": name,
        "query_type": qtype,
        "query_class": "IN",
        "rcode": rcode,
        "answers": answers,
        "srcaddr": src,
        "srcport": str(r.randrange(1024, 65536)),
        "transport": r.choice(("UDP",) * 9 + ("TCP",)),
        "srcids": {"instance": f"i-0{n % 50:015x}"} if r.random() < 0.8 else {"resolver_endpoint": "rslvr-in-abc"},
    }
    if r.random() < 0.05:
        rec["firewall_rule_action"] = r.choice(("BLOCK", "ALERT", "ALLOW"))
        rec["firewall_rule_group_id"] = "rslvr-frg-0123"
        rec["firewall_domain_list_id"] = "rslvr-fdl-4567"
    if r.random() < 0.02:
        kind = r.randrange(4)
        if kind == 0:
            rec["query_timestamp"] = "yesterday"
        elif kind == 1:
            rec["srcport"] = 99999
        elif kind == 2:
            rec["query_name"] = "caf\u00e9.example."
        else:
            del rec["query_name"]
    return rec


def waf_lines(count: int, seed: int = 7) -> list[bytes]:
    """WAF records, one compact JSON object a line, timestamps increasing."""
    return _lines(_waf_record, count, seed)


def route53_lines(count: int, seed: int = 7) -> list[bytes]:
    """Route 53 Resolver query log records, one compact JSON object a line, times increasing."""
    return _lines(_r53_record, count, seed)


def _lines(record, count: int, seed: int) -> list[bytes]:
    r = random.Random(seed)
    ts = 1748736000000
    out = []
    for _ in range(count):
        ts += r.randrange(0, 40)
        text = json.dumps(record(r, ts), separators=(",", ":"), ensure_ascii=False)
        out.append(text.encode("utf-8", "surrogatepass"))  # an odd record's lone surrogates: not UTF-8
    return out
