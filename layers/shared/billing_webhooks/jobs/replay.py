"""ReplayFunction: hand each parked delivery back to the function that parked it (parcels.py).

The function runs its own pipeline again, so a replayed delivery is authenticated, validated,
stored, alerted and applied exactly like a live one: once, whatever happened before. A parcel
is deleted once its function answered (stored, duplicate, or a refusal that would not change on
another try). Then by the answer:
- 503, or no answer at all: storage (or Lambda) is still failing, so the run stops and the parcels
  wait on the queue for the next run;
- 502: one portal failed (a bind, domain/bindings.py): that parcel alone waits for the next run;
- 500: the function failed on this parcel (a bug, not an outage: those answer 503). The first
  time it waits for the next run; the second time it moves to the dead-letter queue with the
  reason, so one poison parcel never holds up the others.
"""

import json
from collections.abc import Callable
from typing import Any

from billing_webhooks.data import aws
from billing_webhooks.observability import logger
from billing_webhooks.recovery import parcels
from billing_webhooks.settings import settings

Invoke = Callable[[str, dict[str, Any]], dict[str, Any]]
# Above the webhook functions' timeout: an Invoke waits for the whole delivery.
INVOKE_READ_TIMEOUT_SECONDS = 60
# Storage failing, or Lambda unreachable: every parcel behind this one would fail alike.
STORAGE_FAILING = 503
FAILED_ON_THIS_PARCEL = 500
# A parcel that failed on its own waits this long: the next scheduled run.
PORTAL_RETRY_SECONDS = 300


def invoke_function(function_name: str, event: dict[str, Any]) -> dict[str, Any]:
    """Lambda Invoke of the parking function; a crash reads as a 500 answer."""
    lambda_client = aws.client("lambda", read_timeout=INVOKE_READ_TIMEOUT_SECONDS)
    answer = lambda_client.invoke(FunctionName=function_name, Payload=json.dumps(event).encode())
    if answer.get("FunctionError"):
        return {"statusCode": 500}
    return json.loads(answer["Payload"].read())


def replay_parked(
    invoke: Invoke, has_time: Callable[[], bool] = lambda: True, retry_seconds: int = PORTAL_RETRY_SECONDS
) -> dict[str, int]:
    sqs, url = parcels.queue(), settings().rescue_queue_url
    counts = {"replayed": 0, "refused": 0, "deferred": 0, "dead_lettered": 0}
    tried: set[str] = set()
    while has_time():
        batch = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, AttributeNames=["ApproximateReceiveCount"]
        ).get("Messages", [])
        if not batch:
            break
        for position, message in enumerate(batch):
            if message["MessageId"] in tried:  # back already: once a run is enough
                _release(sqs, url, batch[position:])
                return counts
            tried.add(message["MessageId"])
            parcel = json.loads(message["Body"])
            if "signature" not in parcel:  # parked while it could not be signed: a person decides
                counts["dead_lettered"] += 1
                _dead_letter(sqs, url, message, "parked unsigned: check it, then redrive it by hand")
                continue
            try:
                answer = invoke(parcel["function"], parcels.replay_event(parcel))
                status = int(answer.get("statusCode", FAILED_ON_THIS_PARCEL))
            except Exception as error:  # Lambda itself did not answer: as an outage
                logger.error("replay invoke failed", extra={"error": error.__class__.__name__})
                answer, status = {}, STORAGE_FAILING
            route = parcel.get("route")
            if status == STORAGE_FAILING:
                counts["deferred"] += 1
                logger.warning("replay deferred: storage still failing", extra={"route": route, "status": status})
                _release(sqs, url, batch[position:])
                return counts
            if status == FAILED_ON_THIS_PARCEL and int(message["Attributes"]["ApproximateReceiveCount"]) >= 2:
                counts["dead_lettered"] += 1
                _dead_letter(sqs, url, message, f"replay failed twice ({status}): {_problem(answer)}")
                continue
            if status >= 500:  # this parcel failed on its own (its portal, a bug): it waits for the next run
                counts["deferred"] += 1
                logger.warning("replay deferred: this parcel failed", extra={"route": route, "status": status})
                _release(sqs, url, [message], retry_seconds)
                continue
            if status >= 400:
                counts["refused"] += 1
                logger.error(
                    "parked delivery refused on replay",
                    extra={"route": route, "status": status, "received_at": parcel.get("received_at")},
                )
            else:
                counts["replayed"] += 1
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return counts


def _problem(answer: dict[str, Any]) -> str:
    try:
        body = json.loads(answer.get("body") or "{}")
    except ValueError:
        body = {}
    return f"{body.get('title', 'no answer')}: {body.get('detail', '')}"[:240]


def _dead_letter(sqs: Any, url: str, message: dict[str, Any], reason: str) -> None:
    """Move the parcel, as it was, to the dead-letter queue (an alarm watches it), with why."""
    sqs.send_message(
        QueueUrl=settings().rescue_dead_letter_queue_url,
        MessageBody=message["Body"],
        MessageAttributes={"reason": {"DataType": "String", "StringValue": reason}},
    )
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    logger.error("parked delivery dead-lettered", extra={"reason": reason})


def _release(sqs: Any, url: str, messages: list[dict[str, Any]], seconds: int = 0) -> None:
    """Visible again after `seconds`: a later run (or `make replay`) takes them."""
    sqs.change_message_visibility_batch(
        QueueUrl=url,
        Entries=[
            {"Id": str(number), "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": seconds}
            for number, message in enumerate(messages)
        ],
    )
