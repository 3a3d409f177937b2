"""The one DynamoDB toolkit every table module uses: items to and from DynamoDB's attribute form,
a read, a conditional write with the one error mapping (a refused condition is an answer, a
request DynamoDB refuses as such is Unstorable, anything else ServiceUnavailable), an update
built from values, a query page, and a lease-style claim. Each table's module (data/<table>.py)
says what its items mean; this module knows no table.
"""

import re
from collections.abc import Iterable
from decimal import Decimal, DecimalException
from typing import Any

from boto3.dynamodb.types import DYNAMODB_CONTEXT, TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

from billing_webhooks.data import aws
from billing_webhooks.errors import ServiceUnavailable, Unstorable
from billing_webhooks.models.base import exact_number


def dynamodb() -> Any:
    return aws.client("dynamodb")


def _attribute(value: Any) -> dict[str, Any]:
    # The types a record holds, in the order they occur most. boto3's TypeSerializer does the same
    # for any type and takes 3x as long (0.07 ms per notification, `make bench`); numbers still go
    # through its DynamoDB decimal context, which refuses what DynamoDB would.
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | Decimal):  # exactly, or DynamoDB's context refuses it (Rounded, Overflow...)
        return {"N": str(DYNAMODB_CONTEXT.create_decimal(exact_number(value)))}
    if isinstance(value, dict):
        return {"M": {str(key): _attribute(child) for key, child in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [_attribute(child) for child in value]}
    if value is None:
        return {"NULL": True}
    if isinstance(value, bytes):
        return {"B": value}
    raise TypeError(f"{type(value).__name__} cannot be stored")


def to_item(record: dict[str, Any]) -> dict[str, Any]:
    """The record as DynamoDB attributes; Unstorable when a value is beyond what DynamoDB holds (a
    number a model let through after converting it, say): refused as sent, never an outage."""
    try:
        return {name: _attribute(value) for name, value in record.items()}
    except (DecimalException, ValueError, OverflowError):
        raise Unstorable("DynamoDB cannot store this delivery as sent (a number beyond 38 digits or 1E+125).") from None


def _error_code(error: Exception) -> str | None:
    response = getattr(error, "response", None) or {}
    return response.get("Error", {}).get("Code")


def condition_failed(error: Exception) -> bool:
    """True when a conditional write was refused because of its condition (not a fault)."""
    return _error_code(error) == "ConditionalCheckFailedException"


def fault(error: Exception, unavailable: str) -> Exception:
    """What a failed DynamoDB call means for the delivery: a request DynamoDB refuses as such (a
    key over its size limit, say) fails the same way on every try, so it is Unstorable, not an
    outage to park and replay; anything else is ServiceUnavailable(unavailable)."""
    if _error_code(error) == "ValidationException":
        return Unstorable("DynamoDB cannot store this delivery as sent (a value over its limits).")
    return ServiceUnavailable(unavailable)


def conditional_write(operation: str, unavailable: str, **request: Any) -> tuple[bool, dict[str, Any]]:
    """One conditional DynamoDB write: (True, {}) when written; (False, the item as it was, if it
    was asked for) when its condition refused it; ServiceUnavailable(unavailable) on any fault."""
    try:
        getattr(dynamodb(), operation)(**request)
    except ClientError as exc:
        if not condition_failed(exc):
            raise fault(exc, unavailable) from None
        return False, from_item(exc.response.get("Item") or {})
    except BotoCoreError as exc:
        raise fault(exc, unavailable) from None
    return True, {}


def transact(unavailable: str, items: list[dict[str, Any]]) -> bool:
    """One TransactWriteItems: True when written, False when a condition in it refused it (the
    cancellation's reasons say so), ServiceUnavailable(unavailable) on any fault."""
    try:
        dynamodb().transact_write_items(TransactItems=items)
    except ClientError as exc:
        reasons = [reason.get("Code") for reason in exc.response.get("CancellationReasons") or []]
        message = str(exc.response.get("Error", {}).get("Message", ""))
        if _error_code(exc) == "TransactionCanceledException" and (
            "ConditionalCheckFailed" in reasons or "ConditionalCheckFailed" in message
        ):
            return False
        raise fault(exc, unavailable) from None
    except BotoCoreError as exc:
        raise fault(exc, unavailable) from None
    return True


_deserialize = TypeDeserializer().deserialize


def _value(attribute: dict[str, Any]) -> Any:
    # The types our items hold, as _attribute writes them. boto3's TypeDeserializer takes 5x as long
    # (0.5 ms of a 32-part GET /accounts, `make bench`); sets and binary still go through it.
    kind, value = next(iter(attribute.items()))
    if kind == "S":
        return value
    if kind == "N":  # a whole number as int (it compares equal to its Decimal), any other as Decimal
        return (
            int(value)
            if value.isdigit() or (value[:1] == "-" and value[1:].isdigit())
            else DYNAMODB_CONTEXT.create_decimal(value)
        )
    if kind == "M":
        return {key: _value(child) for key, child in value.items()}
    if kind == "L":
        return [_value(child) for child in value]
    if kind == "BOOL":
        return value
    if kind == "NULL":
        return None
    return _deserialize(attribute)


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _value(value) for name, value in item.items()}


def get(table: str, key: dict[str, Any], unavailable: str, attributes: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """One strongly consistent GetItem: the item (only `attributes`, when named), or None."""
    request: dict[str, Any] = {"TableName": table, "Key": to_item(key), "ConsistentRead": True}
    if attributes:  # a role may be granted these alone (dynamodb:Attributes)
        request["ProjectionExpression"] = ", ".join(f"#{index}" for index in range(len(attributes)))
        request["ExpressionAttributeNames"] = {f"#{index}": name for index, name in enumerate(attributes)}
    try:
        answer = dynamodb().get_item(**request)
    except (BotoCoreError, ClientError) as exc:
        raise fault(exc, unavailable) from None
    return from_item(answer["Item"]) if "Item" in answer else None


def update(
    table: str,
    key: dict[str, Any],
    unavailable: str,
    *,
    values: dict[str, Any] | None = None,
    remove: Iterable[str] = (),
    condition: str | None = None,
    condition_values: dict[str, Any] | None = None,
    expression: str | None = None,
    return_old: bool = False,
) -> tuple[bool, dict[str, Any]]:
    """SET `values` (each as `#name = :name`) and REMOVE `remove`, or the given `expression`, if
    `condition` holds; every `#name` in them stands for itself. (True, {}) when written; (False,
    the item as it was when `return_old`, else {}) when the condition refused it."""
    values = values or {}
    if expression is None:
        expression = "SET " + ", ".join(f"#{name} = :{name}" for name in values) if values else ""
        if gone := list(remove):
            expression += " REMOVE " + ", ".join(f"#{name}" for name in gone)
    request: dict[str, Any] = {"TableName": table, "Key": to_item(key), "UpdateExpression": expression.strip()}
    if names := {f"#{name}": name for name in re.findall(r"#(\w+)", f"{expression} {condition or ''}")}:
        request["ExpressionAttributeNames"] = names
    placeholders = {f":{name}": value for name, value in values.items()} | (condition_values or {})
    if placeholders:
        request["ExpressionAttributeValues"] = to_item(placeholders)
    if condition:
        request["ConditionExpression"] = condition
        if return_old:
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    return conditional_write("update_item", unavailable, **request)


def delete(
    table: str,
    key: dict[str, Any],
    unavailable: str,
    *,
    condition: str | None = None,
    condition_values: dict[str, Any] | None = None,
) -> bool:
    """One DeleteItem, if `condition` holds (every `#name` in it stands for itself): True when
    deleted (or nothing was there), False when the condition refused it."""
    request: dict[str, Any] = {"TableName": table, "Key": to_item(key)}
    if condition:
        request["ConditionExpression"] = condition
        if names := {f"#{name}": name for name in re.findall(r"#(\w+)", condition)}:
            request["ExpressionAttributeNames"] = names
        if condition_values:
            request["ExpressionAttributeValues"] = to_item(condition_values)
    return conditional_write("delete_item", unavailable, **request)[0]


def _page(operation: str, unavailable: str, request: dict[str, Any]) -> tuple[list[dict[str, Any]], Any]:
    try:
        answer = getattr(dynamodb(), operation)(**request)
    except (BotoCoreError, ClientError) as exc:
        raise fault(exc, unavailable) from None
    return [from_item(item) for item in answer.get("Items", [])], answer.get("LastEvaluatedKey")


def query(unavailable: str, **request: Any) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One Query page: (items, where the next page starts, or None)."""
    return _page("query", unavailable, request)


def scan(unavailable: str, **request: Any) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One Scan page (an operator's listing, never a delivery's path): (items, the next page's start)."""
    return _page("scan", unavailable, request)


def scan_until(
    unavailable: str, limit: int, start_key: dict[str, Any] | None = None, **request: Any
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Up to `limit` items a filtered Scan finds, and where the next page starts (None: the table
    ends): Scan pages until enough are found (a filter may leave a page empty)."""
    found: list[dict[str, Any]] = []
    while True:
        page = {**request, "Limit": limit - len(found)}
        if start_key:
            page["ExclusiveStartKey"] = start_key
        items, start_key = _page("scan", unavailable, page)
        found += items
        if start_key is None or len(found) >= limit:
            return found, start_key


def claim(
    table: str,
    key: dict[str, Any],
    unavailable: str,
    *,
    lease: str,
    now: Any,
    until: Any,
    when: str,
    values: dict[str, Any] | None = None,
    also: str = "",
) -> bool:
    """A lease on an item: True for exactly one of any number of callers racing, while `when`
    holds and no other lease (`lease`, compared with `now`) is running; the lease then runs to
    `until`. `also` adds to the SET (a version bump, a holder's token), with `values` for it."""
    claimed, _ = update(
        table,
        key,
        unavailable,
        expression=f"SET #{lease} = :lease_until" + (f", {also}" if also else ""),
        condition=f"({when}) AND (attribute_not_exists(#{lease}) OR #{lease} < :lease_now)",
        condition_values={":lease_until": until, ":lease_now": now, **(values or {})},
    )
    return claimed


def count(unavailable: str, **request: Any) -> int:
    """How many items a Query matches, every page of it (Select COUNT: no item is sent)."""
    request, total = {**request, "Select": "COUNT"}, 0
    while True:
        try:
            answer = dynamodb().query(**request)
        except (BotoCoreError, ClientError) as exc:
            raise fault(exc, unavailable) from None
        total += answer["Count"]
        if "LastEvaluatedKey" not in answer:
            return total
        request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
