"""Values a sender may send that a model accepts or a decoder reads, but no text, number or date
can hold: a 4xx problem, never a 5xx, nothing parked (issue: no stranger's byte costs a 5xx)."""

import json
from decimal import Decimal

import pytest

from local import samples, seeds
from local.wire import php_form_encode
from tests.integration.test_deliveries import BILLING_AUTH, FORM, post
from tests.integration.test_rescue import rescue_queue  # noqa: F401 (fixture)

BITRIX24_ROUTES = ["/bitrix24/app-install", "/bitrix24/app-update", "/bitrix24/app-uninstall", "/bitrix24/app-payment"]
JSON = {"Content-Type": "application/json"}


def _billing(kind: str, **changes) -> str:
    body = json.loads(seeds.billing_seed_texts()[kind], parse_float=Decimal)
    details = changes.pop("details", {})
    body.update(changes)
    body["details"].update(details)
    return json.dumps(body, default=str)


@pytest.mark.parametrize("path", BITRIX24_ROUTES)
def test_a_lone_surrogate_without_credentials_is_400_on_every_bitrix24_route(api, table, rescue_queue, path):  # noqa: F811
    body = '{"event": "ONAPPPAYMENT", "auth": {"member_id": "m", "application_token": "\\ud800"}}'
    status, _, problem = post(api, path, body, JSON)
    assert (status, problem["status"]) == (400, 400) and "surrogate" in problem["detail"]
    assert table.items() == [] and rescue_queue.parcels() == []


@pytest.mark.parametrize("where", ["channel", "an unknown key", "a key"])
def test_a_lone_surrogate_with_credentials_is_400_too(api, table, rescue_queue, where):  # noqa: F811
    text = _billing("NewPayment")
    if where == "channel":
        text = text.replace('"channel": "', '"channel": "\\udfff', 1)
    elif where == "an unknown key":
        text = text[:-1] + ', "note": "\\ud83d"}'
    else:
        text = text[:-1] + ', "\\ud83d": 1}'
    status, _, problem = post(api, "/billing/new-payment", text, BILLING_AUTH)
    assert status == 400, problem
    assert table.items() == [] and rescue_queue.parcels() == []


@pytest.mark.parametrize(
    "amount", ["1234567890123456789012345678901234567.89", "1.00000000000000000000000000000000000000001"]
)
def test_amounts_past_38_digits_once_exact_are_422_never_parked(api, table, rescue_queue, amount):  # noqa: F811
    text = _billing("NewPayment").replace('"amount": 2000', f'"amount": {amount}')
    assert f'"amount": {amount}' in text
    status, _, problem = post(api, "/billing/new-payment", text, BILLING_AUTH)
    assert status == 422, problem
    assert table.items() == [] and rescue_queue.parcels() == []


@pytest.mark.parametrize("account_id", ["9.99e125", "1e38", "true", "-1e38"])
def test_account_ids_no_path_can_name_are_422(api, table, rescue_queue, account_id):  # noqa: F811
    text = _billing("UnPaidInvoice").replace('"account_id": 504', f'"account_id": {account_id}')
    assert account_id in text
    status, _, problem = post(api, "/billing/unpaid-invoice", text, BILLING_AUTH)
    assert status == 422 and "account_id" in json.dumps(problem)
    assert table.items() == [] and rescue_queue.parcels() == []


@pytest.mark.parametrize("moment", ["0001-01-01 00:00:00 +05:00", "9999-12-31 23:59:59 -05:00"])
def test_a_date_whose_utc_instant_does_not_exist_is_422(api, table, rescue_queue, moment):  # noqa: F811
    status, _, problem = post(
        api, "/billing/unpaid-invoice", _billing("UnPaidInvoice", original_event_date=moment), BILLING_AUTH
    )
    assert status == 422 and "original_event_date" in json.dumps(problem)
    assert table.items() == [] and rescue_queue.parcels() == []


def _payment_form(days: str) -> str:
    body = samples.bitrix24_payment_body()
    body["data"]["DAYS"] = days
    return php_form_encode(body)


def test_a_form_days_of_43_digits_is_422_and_a_days_past_year_9999_is_kept_without_a_date(
    api, table, installations, rescue_queue
):  # noqa: F811
    status, _, problem = post(api, "/bitrix24/app-payment", _payment_form("9" * 43), FORM)
    assert status == 422, problem
    assert table.items() == [] and rescue_queue.parcels() == []
    status, _, answer = post(api, "/bitrix24/app-payment", _payment_form(str(10**12)), FORM)
    assert status == 200, answer
    installation = installations.get(member_id=samples.PORTAL_MEMBER_ID)
    assert installation["days"] == 10**12 and "paid_until" not in installation
    assert rescue_queue.parcels() == []


def test_the_largest_unpaid_invoice_is_stored_and_alerted_once_under_snss_limit(api, table, rescue_queue):  # noqa: F811
    from billing_webhooks.domain import alerts

    text = _billing("UnPaidInvoice")
    text = text[:-1] + ', "note": "' + '\\"' * ((64 * 1024 - len(text) - 20) // 2) + '"}'
    assert 63 * 1024 < len(text.encode()) <= 64 * 1024
    status, _, answer = post(api, "/billing/unpaid-invoice", text, BILLING_AUTH)
    assert status == 200, answer
    [record] = table.items()
    assert record["alert_status"] == "published" and record["alert_message_id"]
    assert len(alerts.message(record)["Message"].encode()) < alerts.MAX_MESSAGE_BYTES
