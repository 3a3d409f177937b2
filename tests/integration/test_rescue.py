"""Nothing lost: deliveries that meet a storage outage are parked on the rescue queue (without a
secret) and replayed once DynamoDB Local is back, each stored exactly once, alert included."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from billing_webhooks.domain import alerts
from billing_webhooks.jobs import alert_redrive as redrive
from billing_webhooks.recovery import parcels
from billing_webhooks.wire.credentials import token_sha256
from local import samples, traffic
from local.replay import replay
from local.server import http_api_event
from local.wire import php_form_encode
from tests.integration.test_alerts import alert_queue  # noqa: F401 (fixture)
from tests.integration.test_deliveries import BILLING_AUTH, FORM, post
from tests.integration.test_installations import ACCESS, DOMAIN, MEMBER, TOKEN, acme, deliver, lifecycle  # noqa: F401
from tests.integration.test_no_secret_in_logs import captured  # noqa: F401 (fixture)

SECRETS = (
    samples.BILLING_TOKEN,
    samples.PORTAL_APPLICATION_TOKEN,
    samples.PORTAL_ACCESS_TOKEN,
    TOKEN,
    ACCESS,
    "q5f0idlro1tn4gvcxa2ojeo4hp16hwbs",
)


class RescueQueue:
    def __init__(self, stack) -> None:
        self.sqs = boto3.client("sqs", endpoint_url=stack.endpoints["AWS_ENDPOINT_URL_SQS"])
        self.url = stack.resources["queues"]["RescueQueue"]

    def parcels(self) -> list[dict]:
        """What is parked, left in place: received, then made visible again."""
        seen: dict[str, dict] = {}
        while batch := self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, VisibilityTimeout=60).get(
            "Messages", []
        ):
            for message in batch:
                seen[message["MessageId"]] = (json.loads(message["Body"]), message["ReceiptHandle"])
        for _, handle in seen.values():
            self.sqs.change_message_visibility(QueueUrl=self.url, ReceiptHandle=handle, VisibilityTimeout=0)
        return [parcel for parcel, _ in seen.values()]

    def empty(self) -> None:
        while batch := self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", []):
            for message in batch:
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def rescue_queue(stack) -> RescueQueue:
    queue = RescueQueue(stack)
    queue.empty()  # what earlier fault tests parked
    return queue


@pytest.fixture
def outage(stack):
    """DynamoDB Local stopped; started again at the end of the test whatever happens."""
    stack.stop_dynamodb()
    yield stack
    if stack.dynamodb.process.poll() is not None:
        stack.start_dynamodb()


def test_deliveries_during_an_outage_mid_run_are_parked_and_replayed_into_exactly_one_record_each(
    api,
    stack,
    table,
    rescue_queue,
    alert_queue,  # noqa: F811
):
    deliveries = traffic.distinct_deliveries(180, run="outage")
    answers: list[int | None] = [None] * len(deliveries)
    posted = threading.Semaphore(0)

    def send(index: int) -> None:
        delivery = deliveries[index]
        answers[index] = post(api, delivery.path, delivery.body, delivery.headers)[0]
        posted.release()
        time.sleep(0.01)  # a steady stream, so the outage falls in the middle of it

    with ThreadPoolExecutor(4) as pool:
        running = [pool.submit(send, index) for index in range(len(deliveries))]
        for _ in range(40):
            posted.acquire()
        stack.stop_dynamodb()
        for _ in range(24):
            posted.acquire()
        stack.start_dynamodb()
        for future in running:
            future.result()

    assert set(answers) <= {200, 503}, answers
    refused = answers.count(503)
    assert refused >= 24, f"the outage should have met the stream: {refused} refused"
    parked = rescue_queue.parcels()
    assert len(parked) == refused, (len(parked), refused)
    assert not any(secret in json.dumps(parcel) for parcel in parked for secret in SECRETS)
    assert all(parcel["reason"].startswith("unavailable") and parcel["received_at"].endswith("Z") for parcel in parked)

    assert replay() == {"replayed": refused, "refused": 0, "deferred": 0, "dead_lettered": 0}
    assert rescue_queue.parcels() == []
    # A claim cut off by the outage (written, answer lost; or published, mark lost) is healed by
    # the scheduled redrive once its lease expires, as in AWS.
    redrive.redrive(datetime.now(UTC) + alerts.LEASE + timedelta(seconds=1))
    records = table.items()
    assert len(records) == len(deliveries)
    assert sorted(record["notification_type"] for record in records) == sorted(d.notification_type for d in deliveries)
    published = alert_queue()
    keys = {json.loads(alert["Message"])["notification_key"] for alert in published}
    assert len(keys) == sum(delivery.alerts for delivery in deliveries), (len(keys), len(published))
    # At most a repeat for a crash between Publish and its bookkeeping (subscribers dedupe on the key).
    assert len(published) - len(keys) <= 2, len(published)
    assert all(
        record["alert_status"] == "published"
        for record in records
        if record["notification_type"] in traffic.ALERT_TYPES
    )
    assert replay() == {"replayed": 0, "refused": 0, "deferred": 0, "dead_lettered": 0}


def test_a_replay_while_storage_is_still_down_leaves_every_parcel_parked(api, table, rescue_queue, outage):
    for delivery in traffic.distinct_deliveries(3, run="still-down"):
        assert post(api, delivery.path, delivery.body, delivery.headers)[0] == 503
    assert replay() == {"replayed": 0, "refused": 0, "deferred": 1, "dead_lettered": 0}
    assert len(rescue_queue.parcels()) == 3

    outage.start_dynamodb()
    assert replay()["replayed"] == 3
    assert len(table.items()) == 3


def test_a_forged_payment_parked_unchecked_is_refused_on_replay_and_never_stored(api, table, rescue_queue, outage):
    body = samples.bitrix24_payment_body()
    body["auth"]["application_token"] = "forged-token"
    status, headers, problem = post(api, "/bitrix24/app-payment", php_form_encode(body), FORM)
    assert status == 503 and "Retry-After" in headers and problem["status"] == 503
    [parcel] = rescue_queue.parcels()
    assert parcel["credential_sha256"] == [token_sha256("forged-token")] and "forged-token" not in json.dumps(parcel)

    outage.start_dynamodb()
    assert replay() == {"replayed": 0, "refused": 1, "deferred": 0, "dead_lettered": 0}
    assert table.items() == [] and rescue_queue.parcels() == []


def test_an_install_during_an_outage_is_confirmed_then_and_replayed_without_any_token(
    api,
    stack,
    table,
    rescue_queue,
    acme,
    outage,  # noqa: F811
):
    status, _ = deliver(api, "app_install", lifecycle("app_install"))
    # Confirmed while we held its token: the app installed, by an administrator.
    assert status == 503 and stack.bitrix24.methods_called(DOMAIN) == ["app.info", "user.admin"]
    [parcel] = rescue_queue.parcels()
    assert parcel["sender"]["info"]["CODE"] == samples.APP_CODE and parcel["sender"]["info"]["INSTALLED"] is True
    assert not any(secret in json.dumps(parcel) for secret in (TOKEN, ACCESS, "q5f0idlro1tn4gvcxa2ojeo4hp16hwbs"))

    outage.start_dynamodb()
    assert replay()["replayed"] == 1
    assert stack.bitrix24.methods_called(DOMAIN) == ["app.info", "user.admin"]  # not asked again
    installations = boto3.client("dynamodb", endpoint_url=stack.endpoints["AWS_ENDPOINT_URL_DYNAMODB"])
    record = installations.get_item(TableName="InstallationsTable", Key={"member_id": {"S": MEMBER}})["Item"]
    assert record["application_token_sha256"]["S"] == token_sha256(TOKEN) and record["domain"]["S"] == DOMAIN
    # The portal's events are accepted with the token its (replayed) install stored.
    payment = lifecycle("app_payment")
    assert deliver(api, "app_payment", payment)[0] == 200


def test_a_parcel_keeps_the_body_and_route_but_no_credential_header_query_or_portal_token():
    billing = http_api_event(
        "POST",
        "/billing/new-payment",
        f"token={samples.BILLING_TOKEN}&x=1",
        {**BILLING_AUTH, "X-Webhook-Token": samples.BILLING_TOKEN, "Cookie": "a=b"},
        b'{"id": "1"}',
    )
    parcel = parcels.parcel(billing, {"id": "1"}, "NewPaymentFunction", "unavailable: test")
    assert (
        parcel["body"] == '{"id": "1"}' and parcel["query"] == "x=1" and parcel["route"] == "POST /billing/new-payment"
    )
    assert parcel["headers"] == {"content-type": "application/json", "x-forwarded-proto": "http"}  # no credential
    assert parcel["credential_sha256"] == [token_sha256(samples.BILLING_TOKEN)] * 3
    assert samples.BILLING_TOKEN not in json.dumps(parcel)

    body = samples.bitrix24_install_body()
    for encoded, headers in (
        (php_form_encode(body).encode(), FORM),
        (json.dumps(body).encode(), {"Content-Type": "application/json"}),
    ):
        event = http_api_event("POST", "/bitrix24/app-install", "", headers, encoded)
        parcel = parcels.parcel(event, body, "AppInstallFunction", "unavailable: test")
        assert not any(secret in json.dumps(parcel) for secret in SECRETS)
        assert parcel["credential_sha256"] == [token_sha256(samples.PORTAL_APPLICATION_TOKEN)]
        replayed = parcels.replay_event(parcel)
        assert replayed["rawPath"] == "/bitrix24/app-install" and replayed["rescued"] is parcel
        assert ("member_id" in parcel["body"]) and samples.PORTAL_MEMBER_ID in parcel["body"]


@pytest.mark.parametrize(
    "token_key",
    ["auth[application_token][x", "auth[application_token][]", "auth[access_token][0]", "auth[refresh_token][a][b]"],
)
def test_a_token_under_any_form_key_the_decoder_reads_as_its_field_is_cut_from_the_kept_body(token_key):
    from billing_webhooks.wire.decoding import parse_php_form

    secret = "tokenthedecoderreads0123456789ab"
    text = f"event=ONAPPINSTALL&{token_key}={secret}&auth[member_id]=m1&auth[domain]=acme.bitrix24.com"
    payload = parse_php_form(text)
    field = token_key[5:].partition("]")[0]
    assert secret in json.dumps(payload["auth"][field])  # the decoder reads it as the token's field
    event = http_api_event("POST", "/bitrix24/app-install", "", FORM, text.encode())
    parcel = parcels.parcel(event, payload, "AppInstallFunction", "unavailable: test")
    assert secret not in json.dumps(parcel)
    assert parcel["body"] == "event=ONAPPINSTALL&auth[member_id]=m1&auth[domain]=acme.bitrix24.com"


def test_when_the_rescue_queue_fails_too_the_answer_is_still_503_and_the_loss_is_logged(
    functions,
    table,
    monkeypatch,
    captured,  # noqa: F811
):
    from botocore.stub import Stubber

    from billing_webhooks.data import toolkit
    from tests.conftest import invoke, load_event

    def refuse(parcel):
        raise ConnectionError("sqs down")

    monkeypatch.setattr(parcels, "park", refuse)
    with Stubber(toolkit.dynamodb()) as stubber:
        stubber.add_client_error("put_item", service_error_code="InternalServerError", http_status_code=500)
        status, headers, _ = invoke(functions["new_payment"], load_event("new_payment"))
    assert status == 503 and "Retry-After" in headers
    lost = [json.loads(line) for line in captured if "delivery lost" in line]
    assert lost and all(
        line["level"] == "CRITICAL"
        and line["correlation_id"] == "NewPayment#GLn2BrD7-bf:0-BRrLTG3-pHj:0-bjN2jqM-Qgb-M7"
        for line in lost
    )


def test_the_replay_function_invokes_the_parking_function_by_name_and_reads_a_crash_as_500(stack):
    import io

    from botocore.response import StreamingBody
    from botocore.stub import Stubber

    from billing_webhooks.data import aws
    from billing_webhooks.jobs import replay as replay_module

    client = aws.client("lambda", read_timeout=replay_module.INVOKE_READ_TIMEOUT_SECONDS)
    answer = json.dumps({"statusCode": 200}).encode()
    with Stubber(client) as stubber:
        stubber.add_response(
            "invoke",
            {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(answer), len(answer))},
            {"FunctionName": "stack-NewPaymentFunction-1", "Payload": b'{"rescued": {}}'},
        )
        stubber.add_response(
            "invoke", {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": StreamingBody(io.BytesIO(b"{}"), 2)}
        )
        assert replay_module.invoke_function("stack-NewPaymentFunction-1", {"rescued": {}}) == {"statusCode": 200}
        assert replay_module.invoke_function("stack-NewPaymentFunction-1", {"rescued": {}}) == {"statusCode": 500}


def test_a_parcel_that_fails_twice_moves_to_the_dead_letter_queue_and_the_run_goes_on(
    api, stack, table, rescue_queue, outage
):
    from billing_webhooks.jobs import replay as billing_replay

    deliveries = traffic.distinct_deliveries(3, run="poison")
    for delivery in deliveries:
        assert post(api, delivery.path, delivery.body, delivery.headers)[0] == 503
    outage.start_dynamodb()
    crash = {"statusCode": 500, "body": json.dumps({"title": "Internal error", "detail": "a bug"})}
    from local.replay import local_invoker

    real = local_invoker()

    def invoke(function, event):  # the function fails on this one parcel, every time
        return crash if json.loads(event["body"])["id"] == "poison-1" else real(function, event)

    # The failing parcel back at once (retry_seconds 0), not at the next run.
    assert billing_replay.replay_parked(invoke, retry_seconds=0) == {
        "replayed": 2,
        "refused": 0,
        "deferred": 1,
        "dead_lettered": 0,
    }
    assert billing_replay.replay_parked(invoke, retry_seconds=0) == {
        "replayed": 0,
        "refused": 0,
        "deferred": 0,
        "dead_lettered": 1,
    }
    assert rescue_queue.parcels() == [] and len(table.items()) == 2
    sqs = boto3.client("sqs", endpoint_url=stack.endpoints["AWS_ENDPOINT_URL_SQS"])
    [dead] = sqs.receive_message(
        QueueUrl=stack.resources["queues"]["RescueDeadLetterQueue"],
        MessageAttributeNames=["All"],
        MaxNumberOfMessages=10,
    )["Messages"]
    assert json.loads(json.loads(dead["Body"])["body"])["id"] == "poison-1"
    assert dead["MessageAttributes"]["reason"]["StringValue"] == "replay failed twice (500): Internal error: a bug"
    sqs.delete_message(QueueUrl=stack.resources["queues"]["RescueDeadLetterQueue"], ReceiptHandle=dead["ReceiptHandle"])


def test_a_replayed_event_is_believed_only_with_the_stacks_signature(functions, table, installations):
    from tests.conftest import invoke

    body = lifecycle("app_install")
    body["auth"].pop("access_token")
    event = http_api_event("POST", "/bitrix24/app-install", "", FORM, php_form_encode(body).encode())
    forged_sender = {"info": {"CODE": samples.APP_CODE, "INSTALLED": True}, "handlers": {}}
    parcel = parcels.parcel(event, body, "AppInstallFunction", "unavailable: forged", forged_sender)
    for signature in (None, "sha256=" + "0" * 64, parcels.sign({**parcel, "reason": "other"})["signature"]):
        forged = {**parcel, **({"signature": signature} if signature else {})}
        status, _, problem = invoke(functions["app_install"], parcels.replay_event(forged))
        assert status == 403 and problem["detail"] == "The replayed parcel is not signed by this stack."
    assert table.items() == [] and installations.get(member_id=MEMBER) is None
    status, _, answer = invoke(functions["app_install"], parcels.replay_event(parcels.sign(parcel)))
    assert (status, answer["status"]) == (200, "stored")  # the same parcel, signed by the stack


def test_an_unsigned_parcel_on_the_queue_goes_to_the_dead_letter_queue_unrun(stack, table, rescue_queue):
    delivery = traffic.distinct_deliveries(1, run="unsigned")[0]
    event = http_api_event("POST", delivery.path, "", delivery.headers, delivery.body)
    parcels.queue().send_message(
        QueueUrl=rescue_queue.url,
        MessageBody=json.dumps(
            parcels.parcel(event, json.loads(delivery.body), "AccountStateChangeFunction", "unavailable: x")
        ),
    )
    assert replay() == {"replayed": 0, "refused": 0, "deferred": 0, "dead_lettered": 1}
    assert table.items() == [] and rescue_queue.parcels() == []
    sqs = boto3.client("sqs", endpoint_url=stack.endpoints["AWS_ENDPOINT_URL_SQS"])
    dead_letters = stack.resources["queues"]["RescueDeadLetterQueue"]
    [dead] = sqs.receive_message(QueueUrl=dead_letters, MessageAttributeNames=["All"])["Messages"]
    assert dead["MessageAttributes"]["reason"]["StringValue"].startswith("parked unsigned")
    sqs.delete_message(QueueUrl=dead_letters, ReceiptHandle=dead["ReceiptHandle"])


def test_a_signed_billing_delivery_replayed_long_after_is_checked_against_when_it_arrived(
    stack, table, rescue_queue, monkeypatch
):
    from billing_webhooks.http.auth import signature

    monkeypatch.setenv("BILLING_SIGNATURE", "required")
    arrived = int(time.time()) - 3600  # parked an hour ago, far outside the 5-minute window of "now"
    delivery = traffic.distinct_deliveries(1, run="signed-late")[0]
    headers = {
        **delivery.headers,
        "X-Webhook-Timestamp": str(arrived),
        "X-Webhook-Signature": signature(samples.BILLING_SIGNING_KEY, str(arrived), delivery.body),
    }
    event = http_api_event("POST", delivery.path, "", headers, delivery.body)
    event["requestContext"]["timeEpoch"] = arrived * 1000
    parcel = parcels.parcel(event, json.loads(delivery.body), "AccountStateChangeFunction", "unavailable: test")
    parcels.park(parcel)
    assert replay() == {"replayed": 1, "refused": 0, "deferred": 0, "dead_lettered": 0}
    assert len(table.items()) == 1


def test_the_replay_function_runs_as_a_scheduled_function(stack, rescue_queue):
    from local.server import LambdaContext, _load_module
    from local.template import ROOT

    class Plenty(LambdaContext):
        @staticmethod
        def get_remaining_time_in_millis() -> int:
            return 600_000

    handler = _load_module("replay_app", ROOT / "functions" / "replay" / "app.py").handler
    assert handler({"source": "aws.events"}, Plenty("ReplayFunction")) == {
        "replayed": 0,
        "refused": 0,
        "deferred": 0,
        "dead_lettered": 0,
    }
