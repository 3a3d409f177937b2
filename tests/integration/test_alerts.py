"""Alerts on a real DynamoDB Local and a moto SNS topic, counted on the SQS queue subscribed to it."""

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber

from billing_webhooks.domain import alerts
from billing_webhooks.jobs import alert_redrive as redrive
from local import provision
from tests.conftest import invoke, load_event


@pytest.fixture
def alert_queue(stack):
    sqs = boto3.client("sqs", endpoint_url=stack.endpoints["AWS_ENDPOINT_URL_SQS"])
    url = stack.resources["queues"][provision.ALERTS_QUEUE]

    def received() -> list[dict]:
        messages = []
        while True:
            batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not batch:
                return messages
            for message in batch:
                messages.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    received()  # drain what earlier tests left (PurgeQueue is limited to once a minute)
    return received


def test_an_unpaid_invoice_reaches_subscribers_once_and_the_record_says_published(functions, table, alert_queue):
    status, _, body = invoke(functions["unpaid_invoice"], load_event("unpaid_invoice"))
    assert (status, body["status"]) == (200, "stored")
    [envelope] = alert_queue()
    assert envelope["Subject"].startswith("Unpaid invoice 38 of account 504")
    assert envelope["MessageAttributes"]["notification_type"]["Value"] == "UnPaidInvoice"
    assert envelope["MessageAttributes"]["severity"]["Value"] == "high"
    document = json.loads(envelope["Message"])
    assert document["text"].startswith("Счёт 38 аккаунта 504")
    assert document["record"]["notification_id"] == "RxmLozMomJAO"
    [record] = table.items()
    assert record["alert_status"] == "published" and record["alert_message_id"] == envelope["MessageId"]
    assert "alert_pending" not in record and "alert_lease_until" not in record  # gone from the sparse index
    invoke(functions["unpaid_invoice"], load_event("unpaid_invoice"))
    assert alert_queue() == []


def test_a_plain_notification_publishes_nothing(functions, table, alert_queue):
    invoke(functions["new_payment"], load_event("new_payment"))
    assert alert_queue() == [] and "alert_status" not in table.items()[0]


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_fifty_concurrent_deliveries_publish_exactly_one_alert(functions, table, alert_queue):
    event = load_event("trial_reminder")
    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(lambda _: invoke(functions["trial_reminder"], event), range(50)))
    assert [status for status, _, _ in answers] == [200] * 50
    assert len(alert_queue()) == 1
    assert len(table.items()) == 1


def test_sns_failing_answers_503_keeps_the_alert_pending_and_the_retry_publishes_it(functions, table, alert_queue):
    with Stubber(alerts.sns()) as stubber:
        stubber.add_client_error("publish", service_error_code="InternalError", http_status_code=500)
        status, headers, _ = invoke(functions["unpaid_invoice"], load_event("unpaid_invoice"))
    assert status == 503 and int(headers["Retry-After"]) > 0
    [record] = table.items()
    assert record["alert_status"] == "pending" and record["payload_sha256"]
    status, _, body = invoke(functions["unpaid_invoice"], load_event("unpaid_invoice"))
    assert (status, body["status"]) == (200, "duplicate")
    assert len(alert_queue()) == 1
    assert table.items()[0]["alert_status"] == "published"


def test_a_claimant_that_dies_between_claim_and_publish_is_healed_by_the_redrive(
    functions, table, alert_queue, monkeypatch
):
    class Crash(BaseException):
        pass

    def die(record, claim):
        raise Crash

    monkeypatch.setattr(alerts, "publish", die)
    with pytest.raises(Crash):
        invoke(functions["trial_reminder"], load_event("trial_reminder"))
    monkeypatch.undo()
    # While the dead claimant's lease runs, redeliveries neither publish nor wait.
    status, _, body = invoke(functions["trial_reminder"], load_event("trial_reminder"))
    assert (status, body["status"]) == (200, "duplicate") and alert_queue() == []
    assert redrive.redrive() == {"published": 0, "failed": 0}
    # Past the lease, the scheduled redrive finds it through the sparse index and publishes once.
    later = datetime.now(UTC) + alerts.LEASE + timedelta(seconds=1)
    assert redrive.redrive(later) == {"published": 1, "failed": 0}
    assert redrive.redrive(later) == {"published": 0, "failed": 0}
    [envelope] = alert_queue()
    assert envelope["MessageAttributes"]["notification_key"]["Value"] == "TrialReminder#AxmLozMymJAO"
    assert table.items()[0]["alert_status"] == "published"


def test_the_redrive_handler_runs_as_a_scheduled_function(stack, table):
    from local.server import LambdaContext, _load_module
    from local.template import ROOT

    handler = _load_module("alert_redrive_app", ROOT / "functions" / "alert_redrive" / "app.py").handler
    assert handler({"source": "aws.events"}, LambdaContext("AlertRedriveFunction")) == {"published": 0, "failed": 0}


def test_a_claim_with_dynamodb_unreachable_is_503_not_a_crash(monkeypatch):
    from botocore.config import Config

    from billing_webhooks.data import toolkit
    from billing_webhooks.errors import ServiceUnavailable

    dead = boto3.client(
        "dynamodb",
        endpoint_url="http://127.0.0.1:9",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=1),
    )
    monkeypatch.setattr(toolkit, "dynamodb", lambda: dead)
    with pytest.raises(ServiceUnavailable):
        alerts.claim({"notification_id": "x", "notification_type": "TrialReminder"}, datetime.now(UTC))
