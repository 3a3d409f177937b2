"""Step 5 of the pipeline: exactly one SNS alert per UnPaidInvoice / TrialReminder notification.

The record carries the alert state. A first delivery writes its record already claimed (alert
pending, lease until now + LEASE), publishes, then marks it published: PutItem, Publish,
UpdateItem. A redelivery that finds the alert pending with an expired lease claims it with a
conditional update first. The sparse GSI `pending-alerts` (attributes removed once published)
lets AlertRedriveFunction find leases that expired without a publish.

A standard topic cannot dedupe: a crash between Publish and the final update repeats one
message at the next claim. Subscribers dedupe on the `notification_key` message attribute.
"""

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from billing_webhooks import clock
from billing_webhooks.data import aws, notifications
from billing_webhooks.errors import ServiceUnavailable
from billing_webhooks.models.base import json_number, utc_timestamp
from billing_webhooks.observability import logger, metrics
from billing_webhooks.settings import settings

LEASE = timedelta(seconds=30)  # > the function timeout: a live claimant always finishes first
PENDING = notifications.ALERT_PENDING


def sns():
    """Made on first use: only the alert functions ever publish."""
    return aws.client("sns")


def new_claim(now: datetime) -> dict[str, str]:
    """Alert attributes of a record that its first delivery writes already claimed."""
    return {
        "alert_status": PENDING,
        "alert_pending": PENDING,  # sparse index key: present only while pending
        "alert_lease_until": utc_timestamp(now + LEASE),
        "alert_claim": uuid.uuid4().hex,
    }


# --- what people read and programs parse ---


def _day(value: Any) -> str:
    try:
        return datetime.fromisoformat(value).date().isoformat()
    except (TypeError, ValueError):
        return "?"


def _shown(value: Any, limit: int = 80) -> str:
    """A value as plain text for a mail: printable, no markup, bounded."""
    text = "".join(char for char in str(value) if char.isprintable() and char not in "<>")
    return text[:limit]


MAX_LINKS = 10  # a mail shows the first ten; the record keeps them all


def _links(details: dict[str, Any]) -> list[str]:
    """The pay links worth showing a person: https URLs only, as text. Anything else the record
    holds (another scheme, another shape) stays in the record and out of the mail."""
    links = details.get("Url_to_pay")
    shown = []
    for link in links[:MAX_LINKS] if isinstance(links, list) else []:
        url = link.get("URL") if isinstance(link, dict) else None
        if (
            isinstance(url, str)
            and url.startswith("https://")
            and url.isprintable()
            and len(url) <= 2048
            and not any(char in url for char in ' <>"')
        ):
            shown.append(f"{_shown(link.get('PaymentSystem') or 'link')}: {url}")
    return shown


_TEXTS = {
    ("UnPaidInvoice", "en"): (
        "Invoice {invoice_id} of account {account_id} is unpaid for {days_not_paid} days; due {due}; "
        "blocking in {days_before_blocking} days.",
        "What to do: remind the customer to pay before the account is blocked.",
    ),
    ("UnPaidInvoice", "ru"): (
        "Счёт {invoice_id} аккаунта {account_id} не оплачен {days_not_paid} дн.; срок оплаты {due}; "
        "блокировка через {days_before_blocking} дн.",
        "Что сделать: напомните клиенту об оплате до блокировки аккаунта.",
    ),
    ("TrialReminder", "en"): (
        "The trial of account {account_id}, started {start}, ends in {days_left} days.",
        "What to do: offer the customer a paid plan before the trial ends.",
    ),
    ("TrialReminder", "ru"): (
        "Пробный период аккаунта {account_id}, начатый {start}, закончится через {days_left} дн.",
        "Что сделать: предложите клиенту платный тариф до окончания пробного периода.",
    ),
}
_PAY_LINKS = {"en": "Pay links:", "ru": "Ссылки для оплаты:"}
_SUBJECTS = {
    "UnPaidInvoice": "Unpaid invoice {invoice_id} of account {account_id}: {days_not_paid} days, blocking in {days_before_blocking}",
    "TrialReminder": "Trial of account {account_id} ends in {days_left} days",
}
SEVERITY = {"UnPaidInvoice": "high", "TrialReminder": "medium"}


def _fields(record: dict[str, Any]) -> dict[str, Any]:
    payload = record["payload"]
    details = payload.get("details") if isinstance(payload.get("details"), dict) else {}
    placeholders = ("invoice_id", "days_not_paid", "days_before_blocking", "days_left")
    return {
        **{name: _shown(details.get(name, "?"), 24) for name in placeholders},
        "account_id": _shown(payload.get("account_id"), 24),
        "due": _day(details.get("payment_due_date")),
        "start": _day(details.get("start_date")),
    }


def language(record: dict[str, Any]) -> str:
    lang = str(record["payload"].get("lang_code") or "").lower()
    return lang if lang in ("ru", "en") else "en"


def text(record: dict[str, Any]) -> str:
    lang = language(record)
    summary, action = _TEXTS[(record["notification_type"], lang)]
    fields = _fields(record)
    lines = [summary.format(**fields), action]
    details = record["payload"].get("details")
    links = _links(details if isinstance(details, dict) else {})
    if links:
        lines += [_PAY_LINKS[lang], *links]
    return "\n".join(lines)


def subject(record: dict[str, Any]) -> str:
    line = _SUBJECTS[record["notification_type"]].format(**_fields(record))
    # SNS subjects: ASCII, no line breaks, under 100 characters.
    return line.encode("ascii", "replace").decode()[:99]


def notification_key(record: dict[str, Any]) -> str:
    return f"{record['notification_type']}#{record['notification_id']}"


# SNS takes at most 256 KiB a message, attributes included; the document stays well under it.
MAX_MESSAGE_BYTES = 256 * 1024
MESSAGE_BUDGET = MAX_MESSAGE_BYTES - 8 * 1024  # room for the subject and the attributes
ATTRIBUTE_CHARS = 256


def _attribute_text(value: Any) -> str:
    """A String attribute SNS accepts: the XML characters only (no other control characters, no
    surrogates), bounded; anything else becomes '?'."""
    text = str(value)[:ATTRIBUTE_CHARS]
    return (
        "".join(
            char
            if char in "\t\n\r" or " " <= char <= "\ud7ff" or "\ue000" <= char <= "\ufffd" or char >= "\U00010000"
            else "?"
            for char in text
        )
        or "-"
    )


PROGRAM_PROTOCOLS = ("sqs", "lambda", "https", "http", "email-json")


def _structured(readable: str, document: str) -> str:
    return json.dumps(
        {"default": readable, "email": readable, **dict.fromkeys(PROGRAM_PROTOCOLS, document)}, ensure_ascii=False
    )


def message(record: dict[str, Any]) -> dict[str, Any]:
    """Publish arguments: text for people (default, email), the record as JSON for programs; under
    SNS's limit for any record we store. Each program protocol carries its own copy of the
    document, so a record too large for five copies (a 64 KiB notification can be) goes without
    its payload: the alert's own fields and the record's key say what it is about."""
    readable, title = text(record), subject(record)
    shown: dict[str, Any] = {
        "subject": title,
        "text": readable,
        "notification_key": notification_key(record),
        "record": {k: v for k, v in record.items() if not k.startswith("alert_")},
    }
    body = _structured(readable, json.dumps(shown, ensure_ascii=False, default=json_number))
    if len(body.encode()) > MESSAGE_BUDGET:
        shown["record"] = {k: v for k, v in shown["record"].items() if k != "payload"}
        shown["fields"] = _fields(record)
        shown["payload_omitted"] = "too large for an SNS message: read the record from NotificationsTable"
        body = _structured(readable, json.dumps(shown, ensure_ascii=False, default=json_number))
    payload = record["payload"]
    account_id = payload.get("account_id")
    return {
        "Subject": title,
        "MessageStructure": "json",
        "Message": body,
        "MessageAttributes": {
            "notification_type": {"DataType": "String", "StringValue": record["notification_type"]},
            **(
                {"account_id": {"DataType": "Number", "StringValue": str(account_id)}}
                if isinstance(account_id, int) and not isinstance(account_id, bool)
                else {}
            ),
            "code": {"DataType": "String", "StringValue": _attribute_text(record.get("code") or "-")},
            "severity": {"DataType": "String", "StringValue": SEVERITY[record["notification_type"]]},
            "notification_key": {"DataType": "String", "StringValue": _attribute_text(notification_key(record))},
        },
    }


# --- claim, publish, mark ---


def claim(record: dict[str, Any], now: datetime) -> str | None:
    """Take a pending alert whose lease has expired; None if published or held by a live claimant."""
    token = uuid.uuid4().hex
    return token if notifications.claim_alert(record, token, now, now + LEASE) else None


def publish(record: dict[str, Any], claim_token: str) -> str:
    """Publish under our claim and mark the alert published. A failed publish leaves it pending
    with its lease released, so the sender's retry (or the redrive) publishes it."""
    try:
        message_id = sns().publish(TopicArn=settings().alert_topic_arn, **message(record))["MessageId"]
    except (BotoCoreError, ClientError):
        notifications.release_alert_lease(record, claim_token)
        raise ServiceUnavailable("The alert could not be published; it stays pending and is retried.") from None
    notifications.mark_alert_published(record, claim_token, message_id, clock.now())
    return message_id


def alert_once(outcome: notifications.Outcome, stored: dict[str, Any], now: datetime) -> None:
    """The pipeline's step 5, once the record is stored (or found stored)."""
    if outcome is notifications.Outcome.STORED:
        claim_token = stored["alert_claim"]  # written already claimed: no extra call
    elif stored.get("alert_status") == PENDING:
        claim_token = claim(stored, now)  # only if the lease expired
    else:
        return
    if claim_token:
        message_id = publish(stored, claim_token)
        metrics.add_metric(name="AlertsPublished", unit=MetricUnit.Count, value=1)
        logger.info("alert published", extra={"message_id": message_id})
