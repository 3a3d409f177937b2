"""boto3 clients: one per service per container, made on first use, all from boto3's default
session. A client of a new session reloads botocore's endpoint and partition data (about 130 ms
of cold start here); a second client of the same session costs about 10 ms."""

from functools import cache
from typing import Any

import boto3
from botocore.config import Config


@cache
def client(service_name: str, read_timeout: int = 3) -> Any:
    # Short timeouts and a bounded retry: a webhook sender waits on us, and a fault is parked and
    # answered 503 well within the function's 20 s (3 attempts of at most 1 s + 3 s, plus backoff).
    # No client-side parameter validation: our requests are built from typed records, and checking
    # them again costs about 0.2 ms per PutItem of a notification (`make bench`).
    config = Config(
        connect_timeout=1,
        read_timeout=read_timeout,
        retries={"mode": "standard", "total_max_attempts": 3},
        parameter_validation=False,
    )
    return boto3.client(service_name, config=config)
