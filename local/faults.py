"""AWS faults and AWS request counts for the simulated year (local/simulate.py), on the handlers'
own boto3 session (the default one: data/aws.py makes every client from it).

A fault is an answer botocore receives instead of the real one, before it is sent (the
`before-send` event), so botocore's own retries and the product's handling see exactly what AWS
would send: DynamoDB's ThrottlingException, and PutEvents entries refused with InternalFailure.
"""

import functools
import json
import random
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

# The stream pollers' own reads are Lambda's, free of charge: not the product's requests.
POLLING = ("dynamodbstreams.", "dynamodb.DescribeTable")


_outside = threading.local()


def outside_the_product(function: Callable[..., Any]) -> Callable[..., Any]:
    """`function`'s AWS requests are the stand-in's own (the test clock peeking at an index, the
    simulation reading its figures): neither counted nor faulted."""

    @functools.wraps(function)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        _outside.active = True
        try:
            return function(*args, **kwargs)
        finally:
            _outside.active = False

    return wrapped


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


def _answer(request: Any, status: int, body: dict[str, Any]) -> Any:
    from botocore.awsrequest import AWSResponse

    return AWSResponse(
        request.url, status, {"Content-Type": "application/x-amz-json-1.0"}, _Raw(json.dumps(body).encode())
    )


class AwsFaults:
    """Counts the product's AWS requests and, at the given rates, answers some with a fault."""

    def __init__(self, rng: random.Random, throttle_rate: float = 0.0, put_events_rate: float = 0.0) -> None:
        self.rng, self.throttle_rate, self.put_events_rate = rng, throttle_rate, put_events_rate
        self.requests: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()

    def install(self) -> "AwsFaults":
        import boto3

        boto3.DEFAULT_SESSION or boto3.setup_default_session()
        events = boto3.DEFAULT_SESSION.events
        events.register("before-call", self._count)
        events.register("before-send", self._fault)
        from billing_webhooks.data import aws

        aws.client.cache_clear()  # a client made before copied the session's hooks without these
        return self

    def _count(self, model: Any, **_: Any) -> None:
        if getattr(_outside, "active", False):
            return
        name = f"{model.service_model.service_name}.{model.name}"
        if not name.startswith(POLLING):
            self.requests.update([name])

    def _fault(self, request: Any, **_: Any) -> Any:
        if getattr(_outside, "active", False):
            return None
        target = str(request.headers.get("X-Amz-Target", b""), "utf-8", "replace") if request.headers else ""
        if target.startswith("DynamoDB_") and not target.endswith("DescribeTable"):
            if self.rng.random() < self.throttle_rate:
                self.faults.update(["dynamodb throttled"])
                return _answer(
                    request,
                    400,
                    {"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException", "message": "Rate exceeded"},
                )
        elif target.endswith("PutEvents") and self.rng.random() < self.put_events_rate:
            entries = len(json.loads(request.body or b"{}").get("Entries", []))
            self.faults.update(["PutEvents entries refused"])
            return _answer(
                request,
                200,
                {
                    "FailedEntryCount": entries,
                    "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "simulated"}] * entries,
                },
            )
        return None
