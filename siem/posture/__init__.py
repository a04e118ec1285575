"""``siem posture``: does this AWS account keep the logs an incident will need?

A SIEM can only search what was collected. These checks look for what is *missing* before it is
needed: versioned, locked-down log buckets, a multi-region trail with data events, access logs on
every load balancer and web ACL, EKS audit logs that reach S3, flow and DNS logs on every VPC, log
retention that outlives an investigation, and log shippers without long-lived IAM user keys.
Every call is read-only; credentials come from boto3's default chain. See docs/posture.md.
"""
