from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from pydantic import ValidationError

from billing_webhooks.models import billing
from billing_webhooks.models.bitrix24 import AppInstallEvent, AppPaymentEvent, AppUpdateEvent
from local import seeds
from local.samples import bitrix24_payment_body

SEEDS = seeds.billing_seeds()


def _error_paths(error: ValidationError) -> set[str]:
    return {".".join(map(str, e["loc"])) for e in error.errors()}


@pytest.mark.parametrize("kind", sorted(SEEDS))
def test_every_billing_seed_example_validates_unchanged(kind):
    model = getattr(billing, kind)
    notification = model.model_validate(SEEDS[kind])
    assert notification.notification_type == kind
    assert notification.notification_id == SEEDS[kind]["id"]


def test_the_seed_document_holds_all_eight_notifications():
    assert set(SEEDS) == {
        "InvoiceForNewPeriod",
        "InvoiceForNewProduct",
        "UnPaidInvoice",
        "AccountStateChange",
        "TrialReminder",
        "PercentOfBalanceUsed",
        "ProductStateChange",
        "NewPayment",
    }


def test_wire_dates_become_aware_datetimes_and_empty_means_open_ended():
    change = billing.AccountStateChange.model_validate(SEEDS["AccountStateChange"])
    assert change.original_event_date == datetime(2019, 3, 5, 17, 10, 22, tzinfo=timezone(timedelta(hours=2)))
    assert change.details.new_state.date_to is None
    assert change.details.prev_state.date_to == datetime(2019, 2, 28, 22, 0, tzinfo=UTC)


def test_a_date_without_a_zone_is_read_as_utc():
    payload = {
        **SEEDS["TrialReminder"],
        "details": {**SEEDS["TrialReminder"]["details"], "start_date": "2019-03-01 00:03:04"},
    }
    reminder = billing.TrialReminder.model_validate(payload)
    assert reminder.details.start_date == datetime(2019, 3, 1, 0, 3, 4, tzinfo=UTC)


def test_a_date_that_is_no_date_is_refused_naming_its_field():
    payload = {**SEEDS["TrialReminder"], "details": {**SEEDS["TrialReminder"]["details"], "start_date": "soon"}}
    with pytest.raises(ValidationError) as caught:
        billing.TrialReminder.model_validate(payload)
    assert _error_paths(caught.value) == {"details.start_date"}


def test_money_stays_decimal_to_the_cent():
    payment = billing.NewPayment.model_validate(SEEDS["NewPayment"])
    assert payment.details.balance_after == Decimal("1861.52")
    assert payment.details.balance_before == Decimal("-138.48")
    stored = payment.stored_payload()["details"]
    assert stored["balance_after"] == Decimal("1861.52") and isinstance(stored["amount"], Decimal)


def test_money_refuses_not_a_number():
    payload = {**SEEDS["NewPayment"], "details": {**SEEDS["NewPayment"]["details"], "amount": "NaN"}}
    with pytest.raises(ValidationError) as caught:
        billing.NewPayment.model_validate(payload)
    assert _error_paths(caught.value) == {"details.amount"}


def test_payment_links_are_typed_entries_kept_as_sent():
    invoice = billing.InvoiceForNewPeriod.model_validate(SEEDS["InvoiceForNewPeriod"])
    assert [link.PaymentSystem for link in invoice.details.Url_to_pay] == ["Liq_Pay", "PayPal"]
    assert invoice.details.invoice_type == "regular"
    odd = {**SEEDS["InvoiceForNewPeriod"]}
    odd["details"] = {
        **odd["details"],
        "Url_to_pay": [{"PaymentProfile": "x", "PaymentSystem": "y", "URL": "not a url"}],
    }
    assert billing.InvoiceForNewPeriod.model_validate(odd).details.Url_to_pay[0].URL == "not a url"


@pytest.mark.parametrize("invoice_type", ["interim", "on demand", "something new"])
def test_every_invoice_type_is_recorded_as_sent(invoice_type):
    payload = {
        **SEEDS["InvoiceForNewProduct"],
        "details": {**SEEDS["InvoiceForNewProduct"]["details"], "invoice_type": invoice_type},
    }
    assert billing.InvoiceForNewProduct.model_validate(payload).details.invoice_type == invoice_type


def test_unknown_extra_fields_are_kept_at_every_level():
    payload = {**SEEDS["UnPaidInvoice"], "new_top_field": {"a": 1}}
    payload["details"] = {**payload["details"], "penalty": Decimal("1.50")}
    stored = billing.UnPaidInvoice.model_validate(payload).stored_payload()
    assert stored["new_top_field"] == {"a": 1}
    assert stored["details"]["penalty"] == Decimal("1.50")


def test_missing_required_field_and_wrong_type_are_named_by_path():
    payload = {k: v for k, v in SEEDS["UnPaidInvoice"].items() if k != "account_id"}
    payload["details"] = {**payload["details"], "days_not_paid": "five"}
    with pytest.raises(ValidationError) as caught:
        billing.UnPaidInvoice.model_validate(payload)
    assert _error_paths(caught.value) == {"account_id", "details.days_not_paid"}


def test_a_body_of_another_type_does_not_validate_as_this_route():
    with pytest.raises(ValidationError) as caught:
        billing.UnPaidInvoice.model_validate(SEEDS["TrialReminder"])
    assert "type" in _error_paths(caught.value)


def test_redelivery_with_a_new_transfer_date_hashes_the_same():
    first = billing.NewPayment.model_validate(SEEDS["NewPayment"])
    again = billing.NewPayment.model_validate({**SEEDS["NewPayment"], "transfer_date": "2020-12-16 09:00:00 +03:00"})
    changed = billing.NewPayment.model_validate({**SEEDS["NewPayment"], "code": "Other"})
    assert first.payload_sha256() == again.payload_sha256() != changed.payload_sha256()


def test_numbers_hash_by_value_not_by_spelling():
    seed = SEEDS["NewPayment"]
    respelled = {**seed, "details": {**seed["details"], "amount": Decimal("2000.00")}}
    assert (
        billing.NewPayment.model_validate(seed).payload_sha256()
        == billing.NewPayment.model_validate(respelled).payload_sha256()
    )


# --- Bitrix24 ONAPPPAYMENT ---


def test_bitrix24_seed_with_member_id_and_token_validates():
    event = AppPaymentEvent.model_validate(bitrix24_payment_body())
    assert event.data.STATUS == "S"
    assert event.data.PAYMENT_EXPIRED == "N"
    assert event.ts == datetime(2016, 6, 20, 16, 21, 54, tzinfo=UTC)
    assert event.account_key == "bitrix24#a223c6b3710f85df22e9377d6c4f7553"


def test_bitrix24_seed_without_member_id_is_refused():
    with pytest.raises(ValidationError) as caught:
        AppPaymentEvent.model_validate(seeds.bitrix24_payment_seed())
    assert _error_paths(caught.value) == {"auth.member_id"}


def test_form_strings_are_read_as_the_types_they_mean():
    body = bitrix24_payment_body()
    body["data"] = {k: str(v) for k, v in body["data"].items()}
    body["event"] = "onAppPayment"
    event = AppPaymentEvent.model_validate(body)
    assert event.data.VERSION == 1 and event.data.DAYS == 28 and event.event == "ONAPPPAYMENT"


@pytest.mark.parametrize("days", ["", None, "-3", "absent"])
def test_days_may_be_absent_empty_null_or_negative(days):
    body = bitrix24_payment_body()
    if days == "absent":
        del body["data"]["DAYS"]
    else:
        body["data"]["DAYS"] = days
    del body["data"]["LANGUAGE_ID"]
    event = AppPaymentEvent.model_validate(body)
    assert event.data.DAYS == (-3 if days == "-3" else None)
    assert event.data.LANGUAGE_ID is None


@pytest.mark.parametrize(("field", "value"), [("STATUS", "X"), ("PAYMENT_EXPIRED", "maybe")])
def test_unknown_values_of_recorded_fields_are_kept(field, value):
    body = bitrix24_payment_body()
    body["data"][field] = value
    assert getattr(AppPaymentEvent.model_validate(body).data, field) == value


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (AppInstallEvent, {"VERSION": "1.0.0", "ACTIVE": "Y", "INSTALLED": "Y", "LANGUAGE_ID": "en"}),
        (AppUpdateEvent, {"VERSION": "2.1.0", "PREVIOUS_VERSION": "2.0.3", "LANGUAGE_ID": "en"}),
        (AppUpdateEvent, {"VERSION": 3, "PREVIOUS_VERSION": 2}),
        (AppUpdateEvent, {"VERSION": Decimal("1.5"), "PREVIOUS_VERSION": "1.10"}),  # JSON 1.5; "1.10" stays text
    ],
)
def test_the_documented_lifecycle_versions_are_kept_as_sent(model, data):
    body = {
        **bitrix24_payment_body(),
        "event": "ONAPPINSTALL" if model is AppInstallEvent else "ONAPPUPDATE",
        "data": data,
    }
    event = model.model_validate(body)
    assert event.data.VERSION == data["VERSION"]
    assert getattr(event.data, "PREVIOUS_VERSION", None) == data.get("PREVIOUS_VERSION")


def test_tokens_are_never_stored_hashed_or_shown():
    body = bitrix24_payment_body()
    body["auth"]["access_token"] = "user-access-token-value"
    event = AppPaymentEvent.model_validate(body)
    text = repr(event) + str(event.stored_payload())
    assert body["auth"]["application_token"] not in text and "user-access-token-value" not in text


def test_bitrix24_id_is_deterministic_and_ignores_tokens_and_handler_id():
    body = bitrix24_payment_body()
    other = bitrix24_payment_body()
    other["auth"]["application_token"] = "another-token"
    other["event_handler_id"] = "99"
    first, second = AppPaymentEvent.model_validate(body), AppPaymentEvent.model_validate(other)
    assert first.notification_id == second.notification_id
    assert first.payload_sha256() == second.payload_sha256()
    later = AppPaymentEvent.model_validate({**body, "ts": "1466439999"})
    assert later.notification_id != first.notification_id


def test_records_serialize_exactly_as_boto3_would():
    from boto3.dynamodb.types import TypeSerializer

    from billing_webhooks.data import toolkit

    record = {
        "s": "x",
        "i": 7,
        "d": Decimal("-138.48"),
        "b": True,
        "n": None,
        "m": {"k": [1, "a", {"z": False}]},
        "e": {},
        "l": [],
    }
    serialize = TypeSerializer().serialize
    assert toolkit.to_item(record) == {name: serialize(value) for name, value in record.items()}
    with pytest.raises(TypeError):
        toolkit.to_item({"f": 1.5})


def test_items_read_back_exactly_as_boto3_reads_them():
    from decimal import Decimal

    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    from billing_webhooks.data.toolkit import from_item

    record = {
        "s": "x",
        "n": Decimal("1861.52"),
        "big": Decimal("1E+100"),
        "int": 7,
        "t": True,
        "none": None,
        "m": {"list": [1, "a", {"deep": Decimal("-0.5")}], "empty": {}},
        "l": [],
        "set": {"a", "b"},
        "bytes": b"\x00\x01",
    }
    item = {name: TypeSerializer().serialize(value) for name, value in record.items()}
    deserialize = TypeDeserializer().deserialize
    assert from_item(item) == {name: deserialize(value) for name, value in item.items()}
