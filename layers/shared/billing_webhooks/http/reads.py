"""The private read API (AWS_IAM on API Gateway): where an account stands, its history, a
portal's licence. Each route costs one DynamoDB Query or GetItem per page it reads.

    GET /accounts/{account_id}                 the account view (domain/accounts.py)
    GET /accounts/{account_id}/notifications   its history, newest event first, paged
    GET /portals/{member_id}                   the installation and its licence, no token

The operator CLI (local/cli.py) calls the same functions, so `--json` prints what the API answers.
"""

import base64
import binascii
import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from billing_webhooks.data import installations, notifications
from billing_webhooks.domain import accounts, lifecycle
from billing_webhooks.errors import BadRequest, NotFound, Unstorable, WebhookError
from billing_webhooks.http.responses import problem_document
from billing_webhooks.models.base import json_number
from billing_webhooks.observability import logger
from billing_webhooks.wire.credentials import MAX_MEMBER_ID_LENGTH

MAX_PAGE = 100
DEFAULT_PAGE = 20
KEY_ATTRIBUTES = ("account_key", "event_time", "notification_id", "notification_type")


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=json_number)


app = APIGatewayHttpResolver(serializer=to_json)


def _account_id(text: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 38):
        raise NotFound(f"No account {text[:40]!r}: account ids are numbers.")
    return int(text)


def account(account_id: str) -> dict[str, Any]:
    found = accounts.show(_account_id(account_id))
    if found is None:
        raise NotFound(f"No notification has named account {account_id} yet.")
    return found


def _cursor(text: str, account_key: str) -> dict[str, Any]:
    try:
        key = json.loads(base64.urlsafe_b64decode(text.encode() + b"=" * (-len(text) % 4)))
        valid = (isinstance(key, dict) and sorted(key) == sorted(KEY_ATTRIBUTES)
                 and all(isinstance(value, str) for value in key.values()) and key["account_key"] == account_key)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        valid = False
    if not valid:
        raise BadRequest("The cursor is not one this API gave for this account.")
    return {name: {"S": key[name]} for name in KEY_ATTRIBUTES}


def _next_cursor(last_key: dict[str, Any] | None) -> str | None:
    if last_key is None:
        return None
    plain = {name: last_key[name]["S"] for name in KEY_ATTRIBUTES}
    return base64.urlsafe_b64encode(to_json(plain).encode()).decode().rstrip("=")


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_PAGE
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_PAGE):
        raise BadRequest(f"limit is a whole number from 1 to {MAX_PAGE}.")
    return int(text)


def history(account_id: str, *, notification_type: str | None = None, limit: str | None = None,
            cursor: str | None = None) -> dict[str, Any]:
    key = accounts.account_key(_account_id(account_id))
    start = _cursor(cursor, key) if cursor else None
    if notification_type is not None and not 0 < len(notification_type) <= 64:
        raise BadRequest("type is a notification type, e.g. UnPaidInvoice.")
    try:
        records, last_key = notifications.history(key, notification_type=notification_type, limit=_limit(limit),
                                                  start_key=start)
    except Unstorable:  # DynamoDB refused the request itself: only a forged cursor gets this far
        raise BadRequest("The cursor is not one this API gave for this account.") from None
    shown = [{name: record.get(name) for name in ("notification_id", "notification_type", "event_time", "received_at",
                                                  "code", "alert_status", "payload")} for record in records]
    return {"account_id": int(account_id), "notifications": shown, "cursor": _next_cursor(last_key)}


def portal(member_id: str) -> dict[str, Any]:
    installation = installations.get(member_id) if 0 < len(member_id) <= MAX_MEMBER_ID_LENGTH else None
    if installation is None:
        raise NotFound("No installation of the app is known for this member_id.")
    return lifecycle.portal_view(installation)


@app.get("/accounts/<account_id>")
def get_account(account_id: str) -> dict[str, Any]:
    return account(account_id)


@app.get("/accounts/<account_id>/notifications")
def get_history(account_id: str) -> dict[str, Any]:
    query = app.current_event.query_string_parameters or {}
    return history(account_id, notification_type=query.get("type"), limit=query.get("limit"),
                   cursor=query.get("cursor"))


@app.get("/portals/<member_id>")
def get_portal(member_id: str) -> dict[str, Any]:
    return portal(member_id)


@app.exception_handler(Exception)
def refused(error: Exception) -> Response:
    if not isinstance(error, WebhookError):  # never a stack trace in an answer or a log line
        logger.error("read failed", extra={"error": error.__class__.__name__})
        error = WebhookError("The request could not be answered.")
    return Response(status_code=error.status, content_type="application/problem+json",
                    body=to_json(problem_document(error)), headers=error.headers)
