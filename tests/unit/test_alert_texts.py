from datetime import UTC, datetime

import pytest

from billing_webhooks import alerts, storage
from billing_webhooks.models import billing
from local import seeds

SEEDS = seeds.billing_seeds()
WHEN = datetime(2026, 11, 23, tzinfo=UTC)


def record(kind: str, **changes) -> dict:
    return storage.build_record(getattr(billing, kind).model_validate({**SEEDS[kind], **changes}), WHEN)


def test_unpaid_invoice_in_russian_from_the_seed():
    assert alerts.text(record("UnPaidInvoice")) == (
        "Счёт 38 аккаунта 504 не оплачен 5 дн.; срок оплаты 2019-03-10; блокировка через 15 дн.\n"
        "Что сделать: напомните клиенту об оплате до блокировки аккаунта."
    )


def test_unpaid_invoice_in_english():
    assert alerts.text(record("UnPaidInvoice", lang_code="en")) == (
        "Invoice 38 of account 504 is unpaid for 5 days; due 2019-03-10; blocking in 15 days.\n"
        "What to do: remind the customer to pay before the account is blocked."
    )


def test_trial_reminder_in_both_languages():
    assert alerts.text(record("TrialReminder")) == (
        "Пробный период аккаунта 504, начатый 2019-03-01, закончится через 5 дн.\n"
        "Что сделать: предложите клиенту платный тариф до окончания пробного периода."
    )
    assert alerts.text(record("TrialReminder", lang_code="en")) == (
        "The trial of account 504, started 2019-03-01, ends in 5 days.\n"
        "What to do: offer the customer a paid plan before the trial ends."
    )


def test_other_languages_fall_back_to_english():
    assert alerts.text(record("TrialReminder", lang_code="de")).startswith("The trial of account 504")


def test_pay_links_are_listed_when_the_notification_carries_them():
    seed = SEEDS["UnPaidInvoice"]
    links = [{"PaymentProfile": "PayPal_EUR", "PaymentSystem": "PayPal", "URL": "https://pay.example/38"}]
    text = alerts.text(record("UnPaidInvoice", lang_code="en", details={**seed["details"], "Url_to_pay": links}))
    assert text.endswith("Pay links:\nPayPal: https://pay.example/38")


@pytest.mark.parametrize("kind", ["UnPaidInvoice", "TrialReminder"])
def test_subjects_are_ascii_and_under_100_characters(kind):
    subject = alerts.subject(record(kind))
    assert subject.isascii() and len(subject) < 100 and "\n" not in subject
    assert "504" in subject


def test_programs_get_the_record_as_json_and_filterable_attributes():
    import json

    message = alerts.message(record("UnPaidInvoice"))
    assert message["MessageStructure"] == "json"
    per_protocol = json.loads(message["Message"])
    assert per_protocol["default"] == per_protocol["email"] == alerts.text(record("UnPaidInvoice"))
    document = json.loads(per_protocol["sqs"])
    assert per_protocol["lambda"] == per_protocol["https"] == per_protocol["sqs"]
    assert document["record"]["payload"]["details"]["invoice_id"] == 38
    assert document["notification_key"] == "UnPaidInvoice#RxmLozMomJAO"
    attributes = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
    assert attributes == {"notification_type": "UnPaidInvoice", "account_id": "504", "code": "UnPaid5Days",
                          "severity": "high", "notification_key": "UnPaidInvoice#RxmLozMomJAO"}
