from datetime import UTC, datetime

import pytest

from billing_webhooks.data import notifications
from billing_webhooks.domain import alerts
from billing_webhooks.models import billing
from local import seeds

SEEDS = seeds.billing_seeds()
WHEN = datetime(2026, 11, 23, tzinfo=UTC)


def record(kind: str, **changes) -> dict:
    return notifications.build_record(getattr(billing, kind).model_validate({**SEEDS[kind], **changes}), WHEN)


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
    assert attributes == {
        "notification_type": "UnPaidInvoice",
        "account_id": "504",
        "code": "UnPaid5Days",
        "severity": "high",
        "notification_key": "UnPaidInvoice#RxmLozMomJAO",
    }


# Any JSON a record may hold where the texts look (extras are kept as sent, so Url_to_pay on an
# UnPaidInvoice may be anything), including markup and other schemes.
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

HOSTILE = st.sampled_from(
    [
        "<script>alert(1)</script>",
        "javascript:alert(1)",
        "https://ok.example/pay",
        "http://plain.example",
        "\x00\u202e",
        "",
        "2019-03-10 00:00:00 +02:00",
        "x" * 500,
    ]
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | HOSTILE,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["URL", "PaymentSystem", "x"]) | st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    kind=st.sampled_from(["UnPaidInvoice", "TrialReminder"]),
    url_to_pay=JSON_VALUES,
    details=st.dictionaries(
        st.sampled_from(
            ["invoice_id", "days_not_paid", "days_before_blocking", "days_left", "payment_due_date", "start_date"]
        ),
        JSON_VALUES,
        max_size=6,
    ),
)
def test_an_alert_renders_whatever_shape_the_record_holds(kind, url_to_pay, details):
    stored = record(kind)
    stored["payload"]["details"] = {**stored["payload"]["details"], **details, "Url_to_pay": url_to_pay}
    text, subject = alerts.text(stored), alerts.subject(stored)
    assert isinstance(text, str) and isinstance(subject, str) and len(subject) < 100
    assert "<" not in text and ">" not in text
    assert all(line.split(": ", 1)[1].startswith("https://") for line in text.splitlines()[3:])


def test_pay_links_that_are_not_https_urls_stay_in_the_record_but_out_of_the_mail():
    stored = record("UnPaidInvoice", lang_code="en")
    stored["payload"]["details"]["Url_to_pay"] = [
        {"PaymentSystem": "<b>Card</b>", "URL": "https://pay.example/38"},
        {"PaymentSystem": "Evil", "URL": "javascript:alert(1)"},
        {"PaymentSystem": "Plain", "URL": "http://pay.example/38"},
        "x",
        1,
    ]
    assert alerts.text(stored).splitlines()[2:] == ["Pay links:", "bCard/b: https://pay.example/38"]


def _largest(shape: str) -> dict:
    """An UnPaidInvoice record whose body is at the 64 KiB limit, in the shape that grows most."""
    stored = record("UnPaidInvoice")
    if shape == "quotes":  # each '"' is 2 bytes on the wire and 4 once nested in the SNS message
        stored["payload"]["note"] = '"' * (64 * 1024 // 2 - 600)
    elif shape == "links":
        link = {"PaymentProfile": "p", "PaymentSystem": "Card", "URL": "https://pay.example/" + "x" * 40}
        stored["payload"]["details"]["Url_to_pay"] = [link] * (64 * 1024 // 100)
    else:
        stored["payload"]["note"] = "\u0001" * (64 * 1024 // 6 - 100)  # 6 bytes on the wire each
    return stored


@pytest.mark.parametrize("shape", ["quotes", "links", "control characters"])
def test_the_largest_storable_notification_makes_an_alert_under_snss_limit(shape):
    import json

    message = alerts.message(_largest(shape))
    size = (
        len(message["Message"].encode())
        + len(message["Subject"].encode())
        + sum(
            len(name) + len(value["StringValue"].encode()) + len(value["DataType"])
            for name, value in message["MessageAttributes"].items()
        )
    )
    assert size < alerts.MAX_MESSAGE_BYTES, size
    document = json.loads(json.loads(message["Message"])["sqs"])
    assert document["notification_key"] == "UnPaidInvoice#RxmLozMomJAO" and document["record"]["account_key"]


def test_attributes_hold_only_what_sns_accepts():
    stored = record("UnPaidInvoice")
    stored["code"] = "bad\x00\x1f\ufffecode" + "x" * 1000
    attributes = alerts.message(stored)["MessageAttributes"]
    assert attributes["code"]["StringValue"].startswith("bad???code") and len(attributes["code"]["StringValue"]) <= 256


def test_the_sns_budget_is_counted_in_utf8_bytes_not_characters():
    import json

    stored = record("UnPaidInvoice")
    # Fewer characters than the budget, more bytes: each "ж" is one character and two bytes, and
    # the document goes out five times (one per program protocol).
    stored["payload"]["note"] = "ж" * (alerts.MESSAGE_BUDGET // 8)
    message = alerts.message(stored)
    assert len(message["Message"]) < alerts.MESSAGE_BUDGET * 2
    assert len(message["Message"].encode()) <= alerts.MESSAGE_BUDGET
    document = json.loads(json.loads(message["Message"])["sqs"])
    assert "payload" not in document["record"] and document["payload_omitted"]


def test_a_mail_shows_at_most_ten_pay_links_and_the_record_keeps_every_one():
    stored = record("UnPaidInvoice")
    links = [{"PaymentSystem": f"Card{n}", "URL": f"https://pay.example/{n}"} for n in range(11)]
    stored["payload"]["details"]["Url_to_pay"] = links
    shown = [line for line in alerts.text(stored).splitlines() if line.startswith("Card")]
    assert shown == [f"Card{n}: https://pay.example/{n}" for n in range(10)]
    assert len(stored["payload"]["details"]["Url_to_pay"]) == 11
