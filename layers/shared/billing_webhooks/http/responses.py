"""HTTP API (payload 2.0) responses: the success body and RFC 9457 problem documents."""

import json
from typing import Any

from billing_webhooks.errors import WebhookError

PROBLEM_TYPE_BASE = "urn:bitrix24-billing-webhooks:problem:"


def _response(status: int, body: dict[str, Any], content_type: str, headers: dict[str, str]) -> dict:
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_type, **headers},
        "body": json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        "isBase64Encoded": False,
    }


# What an outcome means, said beside it where a person would otherwise wonder.
HINTS = {
    "stale": "Kept as a record, but it changed nothing: the portal's installation already holds a newer "
    "event (a later ts) than this one.",
}


def accepted(outcome: str, notification_id: str, notification_type: str) -> dict:
    body = {"status": outcome, "notification_id": notification_id, "type": notification_type}
    if outcome in HINTS:
        body["detail"] = HINTS[outcome]
    return _response(200, body, "application/json", {})


def problem(error: WebhookError) -> dict:
    return _response(error.status, problem_document(error), "application/problem+json", error.headers)


def problem_document(error: WebhookError) -> dict[str, Any]:
    """RFC 9457: what any refusal of ours says, on the webhook routes and the read routes alike."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + error.slug,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
    }
    if error.errors:
        body["errors"] = error.errors
    return body
