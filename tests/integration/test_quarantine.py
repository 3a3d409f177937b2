"""Strict on who, liberal on what: an authenticated delivery our model still refuses is answered
422 and kept in quarantine, so a fixed model can replay it; a stranger's is kept nowhere."""

import json

import boto3
import pytest

from billing_webhooks.data import quarantine
from billing_webhooks.jobs import quarantine_requeue
from billing_webhooks.jobs import replay as billing_replay
from local import seeds
from local.replay import local_invoker
from tests.integration.test_deliveries import BILLING_AUTH, post
from tests.integration.test_rescue import rescue_queue  # noqa: F401 (fixture)


class Quarantine:
    def __init__(self, stack) -> None:
        self.dynamodb = boto3.client("dynamodb", endpoint_url=stack.endpoints["AWS_ENDPOINT_URL_DYNAMODB"])

    def all_items(self) -> list[dict]:
        pages = self.dynamodb.get_paginator("scan").paginate(TableName="QuarantineTable", ConsistentRead=True)
        return [{k: next(iter(v.values())) for k, v in item.items()} for page in pages for item in page["Items"]]

    def items(self) -> list[dict]:
        """The quarantined deliveries (not the senders' counts)."""
        return [item for item in self.all_items() if "parcel" in item]

    def clear(self) -> None:
        for item in self.all_items():
            self.dynamodb.delete_item(TableName="QuarantineTable", Key={"quarantine_id": {"S": item["quarantine_id"]}})


@pytest.fixture
def quarantined(stack) -> Quarantine:
    kept = Quarantine(stack)
    kept.clear()
    return kept


def _with_bad_amount() -> str:
    return seeds.billing_seed_texts()["NewPayment"].replace('"amount": 2000', '"amount": "two thousand"')


def test_an_authenticated_delivery_the_model_refuses_is_kept_in_quarantine_once(api, table, quarantined, rescue_queue):  # noqa: F811
    for _ in range(2):  # a redelivery is one item
        status, _, problem = post(api, "/billing/new-payment", _with_bad_amount(), BILLING_AUTH)
        assert status == 422 and "Kept in quarantine as" in problem["detail"]
        assert problem["errors"][0]["field"] == "details.amount"
    [item] = quarantined.items()
    assert item["route"] == "POST /billing/new-payment" and json.loads(item["errors"])[0]["field"] == "details.amount"
    parcel = json.loads(item["parcel"])
    assert parcel["signature"] and "local-billing-token" not in item["parcel"]
    assert table.items() == [] and rescue_queue.parcels() == []


def test_a_strangers_invalid_delivery_is_kept_nowhere(api, table, quarantined):
    status, _, _ = post(api, "/billing/new-payment", _with_bad_amount(), {"Content-Type": "application/json"})
    assert status == 401 and quarantined.items() == [] and table.items() == []


def test_a_fixed_model_replays_the_quarantined_delivery_and_the_still_refused_return(
    api, table, quarantined, rescue_queue, monkeypatch
):  # noqa: F811
    post(api, "/billing/new-payment", _with_bad_amount(), BILLING_AUTH)
    other = seeds.billing_seed_texts()["AccountStateChange"].replace('"account_id": 504', '"account_id": "x"')
    post(api, "/billing/account-state-change", other, BILLING_AUTH)
    assert len(quarantined.items()) == 2
    # "The fix": NewPayment's amount now admits words (the model as a later release might read it).
    from billing_webhooks.models.billing import NewPayment

    original = NewPayment.model_validate

    def fixed(payload, **options):
        payload = json.loads(json.dumps(payload, default=str))
        if payload.get("details", {}).get("amount") == "two thousand":
            payload["details"]["amount"] = 2000
        return original(payload, **options)

    monkeypatch.setattr(NewPayment, "model_validate", fixed)
    assert quarantine_requeue.requeue_quarantined() == 2
    counts = billing_replay.replay_parked(local_invoker())
    assert (counts["replayed"], counts["refused"]) == (1, 1)
    [record] = table.items()
    assert record["notification_type"] == "NewPayment"
    [still] = quarantined.items()
    assert still["route"] == "POST /billing/account-state-change"
    [kept] = quarantine.parcels()
    assert quarantine.quarantine_id(kept.parcel) == still["quarantine_id"] == kept.quarantine_id


def test_a_delivery_still_refused_on_every_replay_stays_in_quarantine_with_its_credentials(
    api, table, quarantined, rescue_queue
):  # noqa: F811
    post(api, "/billing/new-payment", _with_bad_amount(), BILLING_AUTH)
    [first] = quarantined.items()
    for _ in range(3):  # each replay is refused 422 again, never 401, and the delivery stays kept
        assert quarantine_requeue.requeue_quarantined() == 1
        counts = billing_replay.replay_parked(local_invoker())
        assert counts["refused"] == 1, counts
        [kept] = quarantined.items()
        assert kept["quarantine_id"] == first["quarantine_id"]
        parcel = json.loads(kept["parcel"])
        assert parcel["credential_sha256"] == json.loads(first["parcel"])["credential_sha256"] != []
    assert table.items() == []


def test_replays_of_deliveries_still_refused_never_count_them_again_against_the_cap(
    api, table, quarantined, rescue_queue, monkeypatch
):  # noqa: F811
    monkeypatch.setenv("QUARANTINE_CAP_PER_SENDER", "2")
    for number in range(2):  # the sender's whole cap, kept
        text = _with_bad_amount().replace('"payment_id": 100', f'"payment_id": {100 + number}')
        assert post(api, "/billing/new-payment", text, BILLING_AUTH)[0] == 422
    kept = {item["quarantine_id"] for item in quarantined.items()}
    for _ in range(3):  # each replay refused again: both kept again, none lost to the cap
        assert quarantine_requeue.requeue_quarantined() == 2
        assert billing_replay.replay_parked(local_invoker())["refused"] == 2
        assert {item["quarantine_id"] for item in quarantined.items()} == kept
    counts = [item for item in quarantined.all_items() if item["quarantine_id"].startswith(quarantine.CAP_PREFIX)]
    assert [int(count["kept"]) for count in counts] == [2]
    # The count expired (DynamoDB's TTL) while they were kept: requeued all the same, counted anew.
    [count] = counts
    quarantined.dynamodb.delete_item(TableName="QuarantineTable", Key={"quarantine_id": {"S": count["quarantine_id"]}})
    assert quarantine_requeue.requeue_quarantined() == 2 and quarantined.items() == []
    assert billing_replay.replay_parked(local_invoker())["refused"] == 2
    assert {item["quarantine_id"] for item in quarantined.items()} == kept


def test_a_quarantined_form_keeps_its_bytes_and_expires(api, table, quarantined, installations):
    from local import samples
    from local.wire import php_form_encode
    from tests.integration.test_deliveries import FORM

    body = samples.bitrix24_payment_body()
    body["data"]["DAYS"] = "not a number"
    form = php_form_encode(body) + '&note=%22quoted%22&raw="as sent"'
    status, _, _ = post(api, "/bitrix24/app-payment", form, FORM)
    assert status == 422
    [item] = quarantined.items()
    kept = item["body"].decode()  # the body apart from the parcel's JSON: its own bytes
    assert 'raw="as sent"' in kept and "note=%22quoted%22" in kept and len(kept) < len(form)
    assert samples.PORTAL_APPLICATION_TOKEN not in kept
    assert int(item["expires_at"]) > 0


@pytest.mark.parametrize("character", ["\x01", '"', "é"])
def test_the_largest_form_the_routes_take_is_kept_at_about_its_own_size(
    api, table, quarantined, installations, character
):
    from local import samples
    from local.wire import php_form_encode
    from tests.integration.test_deliveries import FORM

    body = samples.bitrix24_payment_body()
    body["data"]["DAYS"] = "not a number"
    form = (php_form_encode(body) + "&note=").encode()
    filler = character.encode()
    form += filler * ((64 * 1024 - len(form)) // len(filler))  # as sent, unencoded: a JSON escape each
    status, _, problem = post(api, "/bitrix24/app-payment", form, FORM)
    assert status == 422 and "Kept in quarantine" in problem["detail"], problem
    [item] = quarantined.items()
    size = sum(
        len(name) + len(value if isinstance(value, bytes) else str(value).encode()) for name, value in item.items()
    )
    assert size <= 2 * len(form), (size, len(form))
    [kept] = quarantine.parcels()  # as the requeue reads it: the body's bytes, as sent
    assert kept.parcel["body"].endswith(filler.decode() * 1000) and len(kept.parcel["body"].encode()) > len(form) - 200


def test_a_delivery_with_thousands_of_bad_fields_keeps_the_first_errors_and_how_many_more(api, table, quarantined):
    payment = json.loads(seeds.billing_seed_texts()["NewPayment"])
    payment["details"]["invoice_id"] = [f"not-an-id-{number}" for number in range(3000)]
    status, _, problem = post(api, "/billing/new-payment", json.dumps(payment), BILLING_AUTH)
    assert status == 422 and "Kept in quarantine" in problem["detail"]
    [item] = quarantined.items()
    errors = json.loads(item["errors"])
    assert len(item["errors"].encode()) <= quarantine.ERRORS_KEPT_BYTES
    assert errors[0]["field"] == "details.invoice_id.0" and errors[-1]["field"] == "(more)"
    assert errors[-1]["message"] == f"{3000 - (len(errors) - 1)} more error(s) not kept"


def test_a_sender_past_its_quarantine_cap_is_refused_unkept_and_counted(api, table, quarantined, monkeypatch):
    monkeypatch.setenv("QUARANTINE_CAP_PER_SENDER", "2")
    for number in range(3):
        text = _with_bad_amount().replace('"payment_id": 100', f'"payment_id": {100 + number}')
        status, _, problem = post(api, "/billing/new-payment", text, BILLING_AUTH)
        assert status == 422
    assert len(quarantined.items()) == 2 and "Kept in quarantine" not in problem["detail"]
