"""`make records`, `make alerts` and `make events`: what the running `make dev` stack holds,
without the AWS CLI.

    make records            every stored notification, newest received first
    make alerts             the alerts waiting on the local-alerts queue (left there for others)
    make events             the events BillingEventsBus delivered to the local-events queue (left there)

Same port variables as `make dev` (DYNAMODB_LOCAL_PORT, MOTO_PORT).
"""

import json
import os
import sys

import boto3
from boto3.dynamodb.types import TypeDeserializer

from local import attach, provision, services


def _client(service: str, endpoint: str):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=services.REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def records(dynamodb_url: str) -> list[dict]:
    deserialize = TypeDeserializer().deserialize
    pages = _client("dynamodb", dynamodb_url).get_paginator("scan").paginate(TableName="NotificationsTable")
    found = [{k: deserialize(v) for k, v in item.items()} for page in pages for item in page["Items"]]
    return sorted(found, key=lambda record: record.get("received_at", ""), reverse=True)


def _peek(moto_url: str, queue: str) -> list[dict]:
    """The messages on `queue`, read and made visible again at once (left for others)."""
    sqs = _client("sqs", moto_url)
    url = provision.queue_url(moto_url, queue)
    seen = {}
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=5).get("Messages", []):
        for message in batch:
            seen[message["MessageId"]] = message
    for message in seen.values():
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return list(seen.values())


def alerts(moto_url: str) -> list[dict]:
    """The alert documents on local-alerts."""
    return [json.loads(json.loads(message["Body"])["Message"]) for message in _peek(moto_url, provision.ALERTS_QUEUE)]


def events(moto_url: str) -> list[dict]:
    """The EventBridge events on local-events, oldest first."""
    found = [json.loads(message["Body"]) for message in _peek(moto_url, provision.EVENTS_QUEUE)]
    return sorted(
        found,
        key=lambda event: (
            event.get("time", ""),
            str(event.get("detail", {}).get("member_id")),
            int(event.get("detail", {}).get("sequence") or 0),
            str(event.get("detail", {}).get("id")),
        ),
    )


def _verdict(entitled: object, reason: object) -> str:
    return f"{'entitled' if entitled else 'not entitled'} ({reason})"


def event_line(event: dict) -> str:
    """One line a person reads for one event, by its kind (docs/events.md)."""
    kind, detail = event.get("detail-type"), event.get("detail") or {}
    previous = detail.get("previous") or {}
    if kind == "EntitlementChanged":
        said = _verdict(detail.get("entitled"), detail.get("reason"))
        if previous:
            said += ", was " + _verdict(previous.get("entitled"), previous.get("reason"))
    elif kind == "LicenceChanged":
        licence = detail.get("licence") or {}
        said = f"licence {licence.get('state')} ({licence.get('status')}), was {previous.get('state')} ({previous.get('status')})"
    elif kind == "AccountStateChanged":
        said = f"account {detail.get('account_id')} {detail.get('state')}, was {detail.get('previous_state')}"
    elif kind == "InvoiceOverdue":
        said = f"account {detail.get('account_id')}: invoice {detail.get('invoice_id')} overdue"
    else:
        said = json.dumps(detail, ensure_ascii=False)[:200]
    return f"{event.get('time')}  {kind}  #{detail.get('sequence')}  {detail.get('member_id')}  {said}"


def main() -> None:
    ports = attach.dev_ports()  # the variables, else where the running make dev said it listens
    dynamodb_url, moto_url = (f"http://127.0.0.1:{ports[name]}" for name in ("dynamodb", "moto"))
    try:
        attach.check_listening(ports)
    except attach.NoDevStack as error:
        sys.exit(f"make {(sys.argv[1:] or ['records'])[0]}: {error}")
    try:
        if sys.argv[1:] == ["events"]:
            found = events(moto_url)
            for event in found:
                print(event_line(event))
            print(f"{len(found)} event(s) on {provision.EVENTS_QUEUE}")
        elif sys.argv[1:] == ["alerts"]:
            found = alerts(moto_url)
            for document in found:
                print(
                    f"{document['notification_key']}  {document['subject']}\n  "
                    + "\n  ".join(document["text"].splitlines())
                )
            print(f"{len(found)} alert(s) on {provision.ALERTS_QUEUE}")
        else:
            found = records(dynamodb_url)
            for record in found:
                alert = f"  alert {record['alert_status']}" if "alert_status" in record else ""
                print(
                    f"{record['received_at']}  {record['notification_type']:<22} {record['notification_id']:<28} "
                    f"{record['account_key']}{alert}"
                )
            print(f"{len(found)} record(s) in NotificationsTable")
        sys.stdout.flush()  # here, where a reader gone is caught, not at exit
    except BrokenPipeError:  # `make records | head`: the reader had enough; the stack is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
    except Exception as error:  # noqa: BLE001 (one line for a person, not a trace)
        sys.exit(
            f"Cannot read the make dev stack at {dynamodb_url} and {moto_url} ({error.__class__.__name__}): "
            "is `make dev` running there? (DYNAMODB_LOCAL_PORT, MOTO_PORT move them)"
        )


if __name__ == "__main__":
    main()
