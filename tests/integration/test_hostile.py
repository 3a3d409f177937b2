"""What a stranger (or a sender with a credential) can send that DynamoDB or the decoder cannot
take: always a 4xx problem, never a 5xx, nothing parked, nothing written."""

import json
from decimal import Decimal

import pytest
from botocore.exceptions import ClientError

from billing_webhooks.data import installations as installation_records
from billing_webhooks.data import notifications, toolkit
from billing_webhooks.errors import ServiceUnavailable, Unstorable
from billing_webhooks.http.portal_token import PORTAL_REFUSED
from local import samples, seeds
from local.wire import php_form_encode
from tests.integration.test_deliveries import BILLING_AUTH, FORM, post
from tests.integration.test_rescue import rescue_queue  # noqa: F401 (fixture)


def _payment(**auth: str) -> str:
    body = samples.bitrix24_payment_body()
    body["auth"].update(auth)
    return php_form_encode(body)


def _assert_refused_and_nothing_kept(status: int, table, installations, rescue_queue, before) -> None:  # noqa: F811
    assert 400 <= status < 500
    assert table.items() == [] and rescue_queue.parcels() == []
    assert installations.items() == before


@pytest.mark.parametrize("path", ["/bitrix24/app-payment", "/bitrix24/app-uninstall", "/bitrix24/app-update"])
def test_a_member_id_longer_than_any_portals_is_refused_not_parked(api, table, installations, rescue_queue, path):  # noqa: F811
    before = installations.items()
    status, _, problem = post(api, path, _payment(member_id="m" * 3000), FORM)
    _assert_refused_and_nothing_kept(status, table, installations, rescue_queue, before)


def test_a_known_and_an_unknown_portal_are_refused_with_the_same_words(api, table, installations):
    _, _, known = post(api, "/bitrix24/app-payment", _payment(application_token="forged"), FORM)
    _, _, unknown = post(api, "/bitrix24/app-payment", _payment(member_id="f" * 32, application_token="forged"), FORM)
    assert known == unknown and known["detail"] == PORTAL_REFUSED


def test_a_request_dynamodb_refuses_as_such_is_unstorable_not_an_outage(stack):
    with pytest.raises(Unstorable) as refused:
        installation_records.get("m" * 3000)  # over DynamoDB's 2 KiB partition key: ValidationException
    assert refused.value.status == 422 and not refused.value.parked
    throttled = ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "GetItem")
    assert isinstance(toolkit.fault(throttled, "x"), ServiceUnavailable)


@pytest.mark.parametrize("number", ["1e999999", "9" * 41, str(10**40), "1e-131"])
@pytest.mark.parametrize("where", ["details.amount", "an unknown field"])
def test_numbers_dynamodb_cannot_hold_are_422_with_credentials(
    api,
    table,
    installations,
    rescue_queue,
    number,  # noqa: F811
    where,
):
    before = installations.items()
    body = json.loads(seeds.billing_seed_texts()["NewPayment"], parse_float=Decimal)
    text = json.dumps(body, default=str).replace('"amount": "2000"', '"amount": 2000')
    if where == "details.amount":
        text = text.replace('"amount": 2000', f'"amount": {number}')
    else:
        text = text[:-1] + f', "note": {{"values": [1, {number}]}}}}'
    status, _, problem = post(api, "/billing/new-payment", text, BILLING_AUTH)
    assert status == 422 and "cannot be stored" in json.dumps(problem)
    _assert_refused_and_nothing_kept(status, table, installations, rescue_queue, before)


@pytest.mark.parametrize(
    "body,headers",
    [
        ("data" + "[a]" * 1000 + "=x", FORM),
        ("data[0]=a&data[01]=b", FORM),
        ("&".join(["d[]="] * 13000), FORM),
        ('{"a":' * 40 + "1" + "}" * 40, BILLING_AUTH),
        ("[" * 30000 + "]" * 30000, BILLING_AUTH),
    ],
    ids=["form-1000-levels", "form-leading-zero-index", "form-13000-appends", "json-40-levels", "json-30000-levels"],
)
def test_hostile_shapes_are_answered_4xx_and_never_parked(api, table, installations, rescue_queue, body, headers):  # noqa: F811
    before = installations.items()
    path = "/bitrix24/app-payment" if headers is FORM else "/billing/new-payment"
    status, _, problem = post(api, path, body, headers)
    assert problem["status"] == status
    _assert_refused_and_nothing_kept(status, table, installations, rescue_queue, before)


@pytest.mark.parametrize("path,headers", [("/billing/new-payment", BILLING_AUTH), ("/bitrix24/app-payment", FORM)])
def test_a_body_one_byte_over_64_kib_is_413_over_http_with_nothing_kept(
    api,
    table,
    installations,
    rescue_queue,  # noqa: F811
    path,
    headers,
):
    before = installations.items()
    status, _, problem = post(api, path, "a=" + "x" * (64 * 1024 - 1), headers)
    assert (status, problem["status"]) == (413, 413)
    _assert_refused_and_nothing_kept(status, table, installations, rescue_queue, before)


def test_a_lease_alive_keeps_a_duplicate_from_publishing_and_an_expired_one_lets_it(functions, table):
    from datetime import UTC, datetime, timedelta

    from billing_webhooks.domain import alerts
    from billing_webhooks.models.billing import UnPaidInvoice
    from tests.conftest import invoke, load_event

    stored = notifications.build_record(
        UnPaidInvoice.model_validate(seeds.billing_seeds()["UnPaidInvoice"]), datetime.now(UTC)
    )
    now = datetime.now(UTC)
    stored.update(alerts.new_claim(now))  # a first delivery's claim, alive for alerts.LEASE
    notifications.put_record(stored)
    status, _, body = invoke(functions["unpaid_invoice"], load_event("unpaid_invoice"))
    assert (status, body["status"]) == (200, "duplicate")
    [record] = table.items()
    assert record["alert_status"] == "pending"  # the live claimant's to publish, not this duplicate's
    assert alerts.claim(record, now + alerts.LEASE + timedelta(seconds=1))  # once expired, a claim succeeds
