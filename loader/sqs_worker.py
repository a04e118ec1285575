"""Deployable SQS worker: `python loader/sqs_worker.py` in a container or on an instance.

Configuration comes from the environment (SIEM_SQS_QUEUE_URL, SIEM_OPENSEARCH_URL,
SIEM_OPENSEARCH_AWS_REGION for SigV4, ...) or SIEM_CONFIG; credentials from the task/instance role.
Run several copies against one queue to scale out.
"""

from __future__ import annotations

import sys

from siem.cli import main

if __name__ == "__main__":
    sys.exit(main(["-v", "worker", *sys.argv[1:]]))
