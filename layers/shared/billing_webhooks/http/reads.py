"""The private read API (AWS_IAM on API Gateway): where an account stands, its history, a
portal's licence. Each route costs a bounded number of DynamoDB calls, and answers a bounded body
however large the account: every list it can grow is paged.

    GET /accounts/{account_id}                 the account view: singles, open invoices, a page of each list, counts
    GET /accounts/{account_id}/invoices        its invoices (?status=issued|unpaid|paid), paged
    GET /accounts/{account_id}/products        its products, paged
    GET /accounts/{account_id}/balances        its balances, paged
    GET /accounts/{account_id}/notifications   its history, newest event first, paged
    GET /portals/{member_id}                   the installation and its licence, no token
    GET /entitlements/{member_id}              may the portal use the app now, and why (one GetItem)

The operator CLI (tools/cli.py) calls the same functions, so `--json` prints what the API answers.
"""

import base64
import binascii
import json
import re
import secrets
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from billing_webhooks import clock
from billing_webhooks.data import entitlements, installations, notifications
from billing_webhooks.domain import accounts, entitlement_updates, portals
from billing_webhooks.errors import BadRequest, NotFound, Unstorable, WebhookError
from billing_webhooks.http.responses import problem_document
from billing_webhooks.models.base import json_number
from billing_webhooks.models.billing.envelope import ACCOUNT_ID_DIGITS
from billing_webhooks.observability import logger
from billing_webhooks.wire.credentials import MAX_MEMBER_ID_LENGTH

MAX_PAGE = 100
DEFAULT_PAGE = 20
KEY_ATTRIBUTES = ("account_key", "event_time", "notification_id", "notification_type")
PART_KEY = ("account_key", "part")
INVOICE_STATUSES = ("issued", "unpaid", "paid")


def to_json(value: Any) -> str:
    """JSON with every number exactly as stored: money is Decimal, and a float would round it
    (80127737717739.49 reads back as ...48). Each Decimal goes out as a marker no stored text can
    hold (a fresh random one per answer), then the marker is replaced by the number's own digits.
    DynamoDB gives a whole number ending in zeros back with an exponent (100010 as 1.0001E+5, which
    JSON reads as the float 100010.0): those go out as their plain digits (at most 126 of them)."""
    marker, numbers = secrets.token_hex(8), []

    def exact(number: Any) -> Any:
        if isinstance(number, Decimal) and number.is_finite():
            numbers.append(format(number, "f") if int(number.as_tuple().exponent) > 0 else str(number))
            return f"{marker}{len(numbers) - 1}"
        return json_number(number)

    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=exact)
    return re.sub(f'"{marker}(\\d+)"', lambda found: numbers[int(found.group(1))], text) if numbers else text


app = APIGatewayHttpResolver(serializer=to_json)


def account_number(text: str) -> int:
    """An account id as the read API and the CLI take it (NotFound otherwise)."""
    return _account_id(text)


def _account_id(text: str) -> int:
    # Exactly the ids a billing notification may carry (models.billing.envelope.AccountId).
    digits = text.removeprefix("-")
    if not (digits.isascii() and digits.isdigit() and len(digits) <= ACCOUNT_ID_DIGITS):
        raise NotFound(f"No account {text[:40]!r}: account ids are whole numbers of up to {ACCOUNT_ID_DIGITS} digits.")
    return int(text)


def _encode_cursor(last_key: dict[str, Any] | None) -> str | None:
    if last_key is None:
        return None
    plain = {name: value["S"] for name, value in sorted(last_key.items())}
    return base64.urlsafe_b64encode(to_json(plain).encode()).decode().rstrip("=")


def _decode_cursor(text: str, attributes: tuple[str, ...], belongs: Any) -> dict[str, Any]:
    """The DynamoDB key a cursor of ours stands for, if it has exactly `attributes` and `belongs`."""
    try:
        key = json.loads(base64.urlsafe_b64decode(text.encode() + b"=" * (-len(text) % 4)))
        valid = (
            isinstance(key, dict)
            and sorted(key) == sorted(attributes)
            and all(isinstance(value, str) for value in key.values())
            and belongs(key)
        )
    except (ValueError, binascii.Error, UnicodeDecodeError):
        valid = False
    if not valid:
        raise BadRequest("The cursor is not one this API gave for this account.")
    return {name: {"S": key[name]} for name in attributes}


def account(account_id: str) -> dict[str, Any]:
    found = accounts.show(_account_id(account_id))
    if found is None:
        raise NotFound(f"No notification has named account {account_id} yet.")
    view, pages = found
    view["cursors"] = {name: _encode_cursor(page.next_key) for name, page in pages.items()}
    return view


def listing(
    account_id: str, kind: str, *, status: str | None = None, limit: str | None = None, cursor: str | None = None
) -> dict[str, Any]:
    """A page of the account's invoices, products or balances (`kind`: a key of accounts.LISTS)."""
    number = _account_id(account_id)
    key, part_kind = accounts.account_key(number), accounts.LISTS[kind]
    if status is not None and (kind != "invoices" or status not in INVOICE_STATUSES):
        raise BadRequest(f"status is one of {', '.join(INVOICE_STATUSES)} (invoices only).")
    attributes = PART_KEY + (("open_account",) if status == "unpaid" else ())
    start = (
        _decode_cursor(
            cursor,
            attributes,
            lambda found: (
                found["account_key"] == key
                and found["part"].startswith(f"{part_kind}#")
                and found.get("open_account", key) == key
            ),
        )
        if cursor
        else None
    )
    try:
        page = accounts.listing(number, part_kind, limit=_limit(limit), status=status, start_key=start)
    except Unstorable:  # DynamoDB refused the request itself: only a forged cursor gets this far
        raise BadRequest("The cursor is not one this API gave for this account.") from None
    return {"account_id": number, kind: page.items, "cursor": _encode_cursor(page.next_key)}


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_PAGE
    # The length first: int() refuses more than 4,300 digits with an error of its own (a 500).
    if not (len(text) <= len(str(MAX_PAGE)) and text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_PAGE):
        raise BadRequest(f"limit is a whole number from 1 to {MAX_PAGE}.")
    return int(text)


def history(
    account_id: str, *, notification_type: str | None = None, limit: str | None = None, cursor: str | None = None
) -> dict[str, Any]:
    number = _account_id(account_id)
    key = accounts.account_key(number)
    start = _decode_cursor(cursor, KEY_ATTRIBUTES, lambda found: found["account_key"] == key) if cursor else None
    if notification_type is not None and not 0 < len(notification_type) <= 64:
        raise BadRequest("type is a notification type, e.g. UnPaidInvoice.")
    try:
        records, last_key = notifications.history(
            key, notification_type=notification_type, limit=_limit(limit), start_key=start
        )
    except Unstorable:  # DynamoDB refused the request itself: only a forged cursor gets this far
        raise BadRequest("The cursor is not one this API gave for this account.") from None
    shown = [
        {
            name: record.get(name)
            for name in (
                "notification_id",
                "notification_type",
                "event_time",
                "received_at",
                "code",
                "alert_status",
                "payload",
            )
        }
        for record in records
    ]
    return {"account_id": number, "notifications": shown, "cursor": _encode_cursor(last_key)}


def link_conflicts(*, limit: str | None = None, cursor: str | None = None) -> dict[str, Any]:
    """The portals another billing account's code names while one decides them: never applied by
    itself, shown for an operator to settle (`links set` or `links clear`)."""
    from billing_webhooks.domain import links

    start = _decode_cursor(cursor, ("member_id",), lambda found: True) if cursor else None
    try:
        items, last_key = links.conflicts(_limit(limit), start)
    except Unstorable:  # DynamoDB refused the request itself: only a forged cursor gets this far
        raise BadRequest("The cursor is not one this API gave.") from None
    shown = [
        {
            "member_id": item["member_id"],
            "linked_to": item.get("account_id"),
            "link_source": item.get("link_source"),
            "also_named_by": [int(key.partition("#")[2]) for key in item.get("link_conflicts", [])],
        }
        for item in items
    ]
    return {"conflicts": shown, "cursor": _encode_cursor(last_key)}


PORTAL_LISTS = ("unreachable", "tokens-in-doubt", "not-vouched", "in-grace", "link-conflicts")


def portal_list(which: str, *, limit: str | None = None, cursor: str | None = None) -> dict[str, Any]:
    """An operator's list of portals (`portals list --unreachable` …), a page at a time."""
    if which not in PORTAL_LISTS:
        raise BadRequest(f"A list is one of {', '.join(PORTAL_LISTS)}.")
    if which == "link-conflicts":
        conflicts = link_conflicts(limit=limit, cursor=cursor)
        return {"list": which, "portals": conflicts["conflicts"], "cursor": conflicts["cursor"]}
    start = _decode_cursor(cursor, ("member_id",), lambda found: True) if cursor else None
    try:
        if which == "in-grace":
            items, last_key = entitlements.in_grace(_limit(limit), start)
            shown = [
                {"member_id": item["member_id"], **{k: item["entitlement"].get(k) for k in ("reason", "grace_until")}}
                for item in items
            ]
        else:
            items, last_key = installations.listed(which, _limit(limit), start)
            shown = [{name: item.get(name) for name in LISTED} for item in items]
    except Unstorable:  # DynamoDB refused the request itself: only a forged cursor gets this far
        raise BadRequest("The cursor is not one this API gave.") from None
    return {"list": which, "portals": shown, "cursor": _encode_cursor(last_key)}


LISTED = ("member_id", "domain", "status", "vouched", "unreachable_because", "unreachable_since")
STORY_RECORDS = 500  # a portal's lifecycle records told in its story, at most (newest kept)


def portal_story(member_id: str) -> dict[str, Any]:
    """A portal's life in time order, from what the stack keeps: its installation's instants,
    every lifecycle event it sent (install, update, payment, uninstall), its licence checks and
    its entitlement now (and how many changes it told)."""
    installation = installations.get(member_id) if 0 < len(member_id) <= MAX_MEMBER_ID_LENGTH else None
    if installation is None:
        raise NotFound("No installation of the app is known for this member_id.")
    told: list[dict[str, Any]] = []
    start_key = None
    while len(told) < STORY_RECORDS:
        records, start_key = notifications.history(f"bitrix24#{member_id}", limit=100, start_key=start_key)
        for record in records:
            payload = record.get("payload") or {}
            data = payload.get("data") if isinstance(payload, dict) else None
            told.append({"at": record.get("event_time"), "what": record.get("notification_type"), "data": data})
        if start_key is None:
            break
    for name, what in (
        ("installed_at", "installed"),
        ("vouched_at", "vouched for by Bitrix24's OAuth server"),
        ("unreachable_since", f"unreachable ({installation.get('unreachable_because')})"),
        ("last_checked_at", f"last licence check: {installation.get('last_check_outcome')}"),
        ("uninstalled_at", "uninstalled"),
        ("purged_at", "its data purged (CLEAN)"),
    ):
        if installation.get(name):
            told.append({"at": installation[name], "what": what, "data": None})
    kept = entitlements.get(member_id) or {}
    now = entitlement(member_id)  # its installation is known: never NotFound
    return {
        "member_id": member_id,
        "domain": installation.get("domain"),
        "story": sorted(told, key=lambda line: str(line["at"])),
        "entitlement": now,
        "entitlement_changes_told": int(kept.get("sequence") or 0),
        "linked_account": kept.get("account_id"),
    }


def quarantine_list(*, limit: str | None = None, cursor: str | None = None) -> dict[str, Any]:
    """The deliveries our models refused, kept to be replayed (without their bodies)."""
    from billing_webhooks.data import quarantine

    start = _decode_cursor(cursor, ("quarantine_id",), lambda found: True) if cursor else None
    try:
        items, last_key = quarantine.listed(_limit(limit), start)
    except Unstorable:
        raise BadRequest("The cursor is not one this API gave.") from None
    return {"quarantine": items, "cursor": _encode_cursor(last_key)}


QUARANTINE_BODY_SHOWN = 4096  # characters of a quarantined body shown


def quarantine_show(identifier: str) -> dict[str, Any]:
    """One quarantined delivery: where it came, why it was refused, its body (tokens cut when it
    was kept), the first characters."""
    from billing_webhooks.data import quarantine

    item = quarantine.get(identifier) if 0 < len(identifier) <= 128 else None
    if item is None or "parcel" not in item:
        raise NotFound("No quarantined delivery has this id.")
    body = item.get("body")
    text = bytes(getattr(body, "value", body) or b"").decode("utf-8", "replace")
    return {
        "quarantine_id": identifier,
        **{name: item.get(name) for name in ("route", "function", "received_at", "expires_at")},
        "errors": json.loads(item.get("errors") or "[]"),
        "body": text[:QUARANTINE_BODY_SHOWN],
        "body_length": len(text),
    }


def portal(member_id: str) -> dict[str, Any]:
    installation = installations.get(member_id) if 0 < len(member_id) <= MAX_MEMBER_ID_LENGTH else None
    if installation is None:
        raise NotFound("No installation of the app is known for this member_id.")
    return portals.portal_view(installation)


def entitlement(member_id: str) -> dict[str, Any]:
    """The portal's entitlement as last decided (docs/entitlements.md): one GetItem. Decided here,
    and not written, when none is kept yet (a portal installed since its last licence check) or a
    deadline it named has passed (a grace period, an invoice's blocking day): an answer is never
    older than the instant it changed."""

    if not 0 < len(member_id) <= MAX_MEMBER_ID_LENGTH:
        raise NotFound("No installation of the app is known for this member_id.")
    now = clock.now()
    kept = entitlements.get(member_id)
    answer = entitlement_updates.stored_answer(kept, now)
    if answer is None:
        answer = entitlement_updates.decided(member_id, kept or {}, now)
        if answer["reason"] == "not_installed" and kept is None and installations.get(member_id) is None:
            raise NotFound("No installation of the app is known for this member_id.")
    return {name: value for name, value in answer.items() if name != "changes_at"}


@app.get("/entitlements/<member_id>")
def get_entitlement(member_id: str) -> dict[str, Any]:
    return entitlement(member_id)


@app.get("/accounts/<account_id>")
def get_account(account_id: str) -> dict[str, Any]:
    return account(account_id)


@app.get("/accounts/<account_id>/notifications")
def get_history(account_id: str) -> dict[str, Any]:
    query = app.current_event.query_string_parameters or {}
    return history(
        account_id, notification_type=query.get("type"), limit=query.get("limit"), cursor=query.get("cursor")
    )


@app.get("/accounts/<account_id>/<kind>")
def get_listing(account_id: str, kind: str) -> dict[str, Any]:
    if kind not in accounts.LISTS:
        raise NotFound("No such list: invoices, products, balances and notifications are.")
    query = app.current_event.query_string_parameters or {}
    return listing(account_id, kind, status=query.get("status"), limit=query.get("limit"), cursor=query.get("cursor"))


@app.get("/portals/<member_id>")
def get_portal(member_id: str) -> dict[str, Any]:
    return portal(member_id)


@app.exception_handler(Exception)
def refused(error: Exception) -> Response:
    if not isinstance(error, WebhookError):  # never a stack trace in an answer or a log line
        logger.error("read failed", extra={"error": error.__class__.__name__})
        error = WebhookError("The request could not be answered.")
    return Response(
        status_code=error.status,
        content_type="application/problem+json",
        body=to_json(problem_document(error)),
        headers=error.headers,
    )
