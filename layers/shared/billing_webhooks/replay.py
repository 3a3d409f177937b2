"""ReplayFunction: hand each parked delivery back to the function that parked it (rescue.py).

The function runs its own pipeline again, so a replayed delivery is authenticated, validated,
stored, alerted and applied exactly like a live one: once, whatever happened before. A parcel
is deleted once its function answered (stored, duplicate, or a refusal that would not change on
another try). An answer of 500 or 503 means storage is still failing, so the run stops and the
parcels wait on the queue for the next run; a 502 means one portal failed (a bind, bindings.py),
so that parcel alone waits for the next run (the queue's visibility timeout) and the run goes on.
"""

import json
import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from billing_webhooks import aws, rescue
from billing_webhooks.observability import logger, metrics

Invoke = Callable[[str, dict[str, Any]], dict[str, Any]]
# Above the webhook functions' timeout: an Invoke waits for the whole delivery.
INVOKE_READ_TIMEOUT_SECONDS = 60
# Our own storage (or code) failing: every parcel behind this one would fail alike.
STORAGE_FAILING = frozenset({500, 503})
# A parcel whose portal failed waits this long: the next scheduled run.
PORTAL_RETRY_SECONDS = 300


def invoke_function(function_name: str, event: dict[str, Any]) -> dict[str, Any]:
    """Lambda Invoke of the parking function; a crash reads as a 500 answer."""
    lambda_client = aws.client("lambda", read_timeout=INVOKE_READ_TIMEOUT_SECONDS)
    answer = lambda_client.invoke(FunctionName=function_name, Payload=json.dumps(event).encode())
    if answer.get("FunctionError"):
        return {"statusCode": 500}
    return json.loads(answer["Payload"].read())


def replay_parked(invoke: Invoke, has_time: Callable[[], bool] = lambda: True) -> dict[str, int]:
    sqs, url = rescue.queue(), os.environ["RESCUE_QUEUE_URL"]
    counts = {"replayed": 0, "refused": 0, "deferred": 0}
    tried: set[str] = set()
    while has_time():
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not batch:
            break
        for position, message in enumerate(batch):
            if message["MessageId"] in tried:  # back already: once a run is enough
                _release(sqs, url, batch[position:])
                return counts
            tried.add(message["MessageId"])
            parcel = json.loads(message["Body"])
            try:
                status = int(invoke(parcel["function"], rescue.replay_event(parcel)).get("statusCode", 500))
            except Exception as error:  # the function could not be reached: as a failed answer
                logger.error("replay invoke failed", extra={"error": error.__class__.__name__})
                status = 500
            if status in STORAGE_FAILING:
                counts["deferred"] += 1
                logger.warning("replay deferred: storage still failing", extra={"route": parcel["route"], "status": status})
                _release(sqs, url, batch[position:])
                return counts
            if status >= 500:  # this parcel's portal failed: it alone waits for the next run
                counts["deferred"] += 1
                logger.warning("replay deferred: the portal failed", extra={"route": parcel["route"], "status": status})
                _release(sqs, url, [message], PORTAL_RETRY_SECONDS)
                continue
            if status >= 400:
                counts["refused"] += 1
                logger.error("parked delivery refused on replay",
                             extra={"route": parcel["route"], "status": status, "received_at": parcel["received_at"]})
            else:
                counts["replayed"] += 1
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return counts


def _release(sqs: Any, url: str, messages: list[dict[str, Any]], seconds: int = 0) -> None:
    """Visible again after `seconds`: a later run (or `make replay`) takes them."""
    sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
        {"Id": str(number), "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": seconds}
        for number, message in enumerate(messages)
    ])


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    # Leave a minute for the last Invoke to finish within the function's own timeout.
    counts = replay_parked(invoke_function, lambda: context.get_remaining_time_in_millis() > 60_000)
    for name, value in counts.items():
        metrics.add_metric(name=f"Replay{name.capitalize()}", unit=MetricUnit.Count, value=value)
    logger.info("replay run", extra=counts)
    return counts
