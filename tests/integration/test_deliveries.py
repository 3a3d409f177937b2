"""Real HTTP posts to the local API, stored in a real DynamoDB Local."""

import base64
import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from botocore.stub import Stubber

from billing_webhooks.data import toolkit
from local import samples, seeds
from local.samples import bitrix24_payment_body
from local.template import routes
from local.wire import php_form_encode
from tests.conftest import invoke, load_event

BILLING_AUTH = {"Authorization": f"Bearer {samples.BILLING_TOKEN}", "Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
SEEDS = seeds.billing_seed_texts()


def post(api, path: str, body: str | bytes, headers: dict[str, str]) -> tuple[int, dict, dict]:
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(api.url + path, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback)
            return response.status, dict(response.headers), json.loads(response.read(), parse_float=Decimal)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"{}")


def body_of(event: dict) -> bytes:
    return base64.b64decode(event["body"]) if event["isBase64Encoded"] else event["body"].encode()


@pytest.mark.parametrize("route", routes(), ids=lambda r: r.code_dir.name)
def test_each_sample_event_posted_over_http_stores_one_record(api, table, route):
    event = load_event(route.code_dir.name)
    status, _, answer = post(api, route.path, body_of(event), event["headers"])
    assert status == 200 and answer["status"] == "stored"
    [record] = table.items()
    assert (record["notification_id"], record["notification_type"]) == (answer["notification_id"], answer["type"])
    assert record["source"] == ("bitrix24" if route.path.startswith("/bitrix24/") else "billing")
    assert record["event_time"].endswith("Z") and len(record["payload_sha256"]) == 64


def test_the_record_holds_the_validated_payload_with_money_as_numbers(api, table):
    post(api, "/billing/new-payment", SEEDS["NewPayment"], BILLING_AUTH)
    [record] = table.items()
    assert record["account_key"] == "billing#113"
    assert record["event_time"] == "2020-12-15T12:52:35.000Z"
    assert record["code"] == "AllTypePayment"
    assert record["payload"]["details"]["balance_after"] == Decimal("1861.52")
    assert record["payload"]["details"]["balance_before"] == Decimal("-138.48")
    assert record["payload"]["original_event_date"] == "2020-12-15T15:52:35+03:00"


def test_a_redelivery_answers_duplicate_and_writes_nothing(api, table):
    post(api, "/billing/unpaid-invoice", SEEDS["UnPaidInvoice"], BILLING_AUTH)
    [before] = table.items()
    restamped = SEEDS["UnPaidInvoice"].replace(
        '"transfer_date": "2019-03-05 17:10:24 +02:00"', '"transfer_date": "2019-03-06 08:00:00 +02:00"'
    )
    assert restamped != SEEDS["UnPaidInvoice"]
    status, _, answer = post(api, "/billing/unpaid-invoice", restamped, BILLING_AUTH)
    assert (status, answer["status"]) == (200, "duplicate")
    assert table.items() == [before]


def test_the_same_key_with_another_payload_is_409_and_the_record_is_untouched(api, table):
    post(api, "/billing/unpaid-invoice", SEEDS["UnPaidInvoice"], BILLING_AUTH)
    [before] = table.items()
    changed = SEEDS["UnPaidInvoice"].replace('"days_not_paid": 5', '"days_not_paid": 6')
    status, headers, problem = post(api, "/billing/unpaid-invoice", changed, BILLING_AUTH)
    assert status == 409 and headers["Content-Type"] == "application/problem+json"
    assert problem["status"] == 409 and "RxmLozMomJAO" in problem["detail"]
    assert table.items() == [before]


def test_the_same_id_under_another_type_is_another_notification(api, table):
    post(api, "/billing/invoice-for-new-period", SEEDS["InvoiceForNewPeriod"], BILLING_AUTH)
    post(api, "/billing/trial-reminder", SEEDS["TrialReminder"], BILLING_AUTH)
    assert sorted(r["notification_type"] for r in table.items()) == ["InvoiceForNewPeriod", "TrialReminder"]
    assert {r["notification_id"] for r in table.items()} == {"AxmLozMymJAO"}


def test_twenty_concurrent_deliveries_of_one_notification_store_one_record(api, table):
    with ThreadPoolExecutor(20) as pool:
        answers = list(
            pool.map(lambda _: post(api, "/billing/new-payment", SEEDS["NewPayment"], BILLING_AUTH), range(20))
        )
    assert [status for status, _, _ in answers] == [200] * 20
    assert sorted(a["status"] for _, _, a in answers) == ["duplicate"] * 19 + ["stored"]
    assert len(table.items()) == 1


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_twenty_concurrent_handler_calls_store_one_record(functions, table):
    """Twenty containers at once (no per-function lock): the conditional put decides."""
    event = load_event("new_payment")
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: invoke(functions["new_payment"], event), range(20)))
    assert sorted(body["status"] for status, _, body in answers if status == 200) == ["duplicate"] * 19 + ["stored"]
    assert len(table.items()) == 1


# --- refusals: a clear problem document, nothing stored ---


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Content-Type": "application/json"}, 401),
        ({"Content-Type": "application/json", "Authorization": "Bearer wrong"}, 403),
        ({"Content-Type": "application/json", "X-Webhook-Token": "wrong"}, 403),
    ],
)
def test_billing_credentials_missing_or_wrong(api, table, headers, status):
    code, response_headers, problem = post(api, "/billing/new-payment", SEEDS["NewPayment"], headers)
    assert (code, problem["status"]) == (status, status)
    assert response_headers["Content-Type"] == "application/problem+json"
    assert table.items() == []


def test_billing_token_in_the_query_string_is_accepted(api, table):
    status, _, _ = post(
        api,
        f"/billing/new-payment?token={samples.BILLING_TOKEN}",
        SEEDS["NewPayment"],
        {"Content-Type": "application/json"},
    )
    assert status == 200 and len(table.items()) == 1


def _signed_headers(body: str, key: str = samples.BILLING_SIGNING_KEY, age: int = 0) -> dict[str, str]:
    from billing_webhooks.http.auth import signature

    timestamp = str(int(time.time()) - age)
    return {
        **BILLING_AUTH,
        "X-Webhook-Timestamp": timestamp,
        "X-Webhook-Signature": signature(key, timestamp, body.encode()),
    }


def test_with_signatures_required_only_signed_fresh_bodies_are_stored(api, table, monkeypatch):
    monkeypatch.setenv("BILLING_SIGNATURE", "required")
    body = SEEDS["NewPayment"]
    assert post(api, "/billing/new-payment", body, BILLING_AUTH)[0] == 401
    assert post(api, "/billing/new-payment", body, _signed_headers(body, key="guessed"))[0] == 403
    assert post(api, "/billing/new-payment", body, _signed_headers(body, age=600))[0] == 403
    tampered = body.replace('"amount": 2000', '"amount": 20000')
    assert tampered != body
    assert post(api, "/billing/new-payment", tampered, _signed_headers(body))[0] == 403
    assert table.items() == []
    status, _, answer = post(api, "/billing/new-payment", body, _signed_headers(body))
    assert (status, answer["status"]) == (200, "stored") and len(table.items()) == 1


def test_a_body_of_another_type_than_the_route_is_422(api, table):
    status, _, problem = post(api, "/billing/unpaid-invoice", SEEDS["TrialReminder"], BILLING_AUTH)
    assert status == 422
    assert "type" in [e["field"] for e in problem["errors"]]
    assert table.items() == []


def test_invalid_fields_are_422_with_each_path(api, table):
    broken = json.loads(SEEDS["UnPaidInvoice"])
    broken["details"]["payment_due_date"] = "soon"
    del broken["account_id"]
    status, _, problem = post(api, "/billing/unpaid-invoice", json.dumps(broken), BILLING_AUTH)
    assert status == 422
    assert {e["field"] for e in problem["errors"]} == {"account_id", "details.payment_due_date"}
    assert "soon" not in json.dumps(problem)  # rejected input is never echoed
    assert table.items() == []


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        ('{"id": ', BILLING_AUTH, 400),
        ("x" * (64 * 1024 + 1), BILLING_AUTH, 413),
        ("id=1", {**BILLING_AUTH, "Content-Type": "application/x-www-form-urlencoded"}, 415),
        ("<x/>", {**BILLING_AUTH, "Content-Type": "text/xml"}, 415),
    ],
)
def test_malformed_oversized_and_foreign_bodies(api, table, body, headers, status):
    code, _, problem = post(api, "/billing/new-payment", body, headers)
    assert (code, problem["status"]) == (status, status)
    assert table.items() == []


def test_unknown_route_is_404(api):
    assert post(api, "/billing/nothing-here", "{}", BILLING_AUTH)[0] == 404


# --- Bitrix24 wire variants ---


def test_bitrix24_form_delivery_with_wire_quirks_is_stored(api, table):
    body = bitrix24_payment_body()
    body["event"] = "onapppayment"
    body["event_handler_id"] = "14"
    body["data"]["DAYS"] = ""
    body["data"]["STATUS"] = "P"
    del body["data"]["LANGUAGE_ID"]
    status, _, answer = post(api, "/bitrix24/app-payment", php_form_encode(body), FORM)
    assert (status, answer["type"]) == (200, "ONAPPPAYMENT")
    [record] = table.items()
    assert record["payload"]["data"]["DAYS"] is None
    assert record["account_key"] == f"bitrix24#{samples.PORTAL_MEMBER_ID}"
    assert record["event_time"] == "2016-06-20T16:21:54.000Z"
    assert samples.PORTAL_APPLICATION_TOKEN not in json.dumps(record, default=str)


def test_bitrix24_json_and_form_deliveries_of_one_event_are_one_notification(api, table):
    body = bitrix24_payment_body()
    first = post(api, "/bitrix24/app-payment", php_form_encode(body), FORM)
    body["event_handler_id"] = 15  # restamped by the queue server
    again = post(api, "/bitrix24/app-payment", json.dumps(body), {"Content-Type": "application/json"})
    assert (first[2]["status"], again[2]["status"]) == ("stored", "duplicate")
    assert len(table.items()) == 1


@pytest.mark.parametrize(
    ("token", "member", "status"),
    [
        ("forged", samples.PORTAL_MEMBER_ID, 403),
        (samples.PORTAL_APPLICATION_TOKEN, "other-portal", 403),
        ("", samples.PORTAL_MEMBER_ID, 401),
    ],
)
def test_bitrix24_wrong_token_or_unknown_portal_is_refused(api, table, token, member, status):
    body = bitrix24_payment_body()
    body["auth"].update(application_token=token, member_id=member)
    assert post(api, "/bitrix24/app-payment", php_form_encode(body), FORM)[0] == status
    assert table.items() == []


def test_an_account_history_reads_in_order_from_the_by_account_index(api, table, dynamodb):
    for kind in ("UnPaidInvoice", "TrialReminder", "AccountStateChange"):
        post(
            api,
            f"/billing/{ {'UnPaidInvoice': 'unpaid-invoice', 'TrialReminder': 'trial-reminder', 'AccountStateChange': 'account-state-change'}[kind] }",
            SEEDS[kind],
            BILLING_AUTH,
        )
    found = dynamodb.query(
        TableName=table.name,
        IndexName="by-account",
        KeyConditionExpression="account_key = :a",
        ExpressionAttributeValues={":a": {"S": "billing#504"}},
    )
    assert found["Count"] == 3


# --- storage faults: 503 with Retry-After, nothing half-done ---


@pytest.mark.parametrize(
    "code", ["ProvisionedThroughputExceededException", "InternalServerError", "ThrottlingException"]
)
def test_dynamodb_failing_answers_503_with_retry_after(functions, table, code):
    client = toolkit.dynamodb()
    with Stubber(client) as stubber:
        stubber.add_client_error("put_item", service_error_code=code, http_status_code=500)
        status, headers, problem = invoke(functions["new_payment"], load_event("new_payment"))
    assert status == 503 and int(headers["Retry-After"]) > 0
    assert problem["status"] == 503
    assert table.items() == []


def test_dynamodb_unreachable_answers_503(functions, table, monkeypatch):
    import boto3
    from botocore.config import Config

    dead = boto3.client(
        "dynamodb",
        endpoint_url="http://127.0.0.1:9",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=1),
    )
    monkeypatch.setattr(toolkit, "dynamodb", lambda: dead)
    status, headers, _ = invoke(functions["unpaid_invoice"], load_event("unpaid_invoice"))
    assert status == 503 and "Retry-After" in headers


def test_no_token_or_secret_reaches_a_log_line(api, table):
    import io

    from billing_webhooks.observability import logger

    handler, buffer = logger.registered_handler, io.StringIO()
    previous_stream, previous_level = handler.setStream(buffer), logger.log_level
    logger.setLevel("DEBUG")
    try:
        post(api, "/billing/new-payment", SEEDS["NewPayment"], BILLING_AUTH)
        post(
            api,
            "/billing/new-payment",
            SEEDS["NewPayment"],
            {**BILLING_AUTH, "Authorization": "Bearer wrong-guess-123"},
        )
        post(api, "/bitrix24/app-payment", php_form_encode(bitrix24_payment_body()), FORM)
    finally:
        handler.setStream(previous_stream)
        logger.setLevel(previous_level)
    output = buffer.getvalue()
    assert "delivery accepted" in output and "delivery refused" in output
    for secret in (samples.BILLING_TOKEN, samples.PORTAL_APPLICATION_TOKEN, "wrong-guess-123"):
        assert secret not in output
