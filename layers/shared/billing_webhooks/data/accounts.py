"""AccountsTable: the account view, one item per part of an account (domain/accounts.py).

Key: `account_key` (`billing#504`) and `part` (`state`, `profile`, `trial`, `product#7`,
`invoice#38`, `balance#Tasks`). An item keeps each aspect of its part (an invoice's `issued`,
`unpaid` and `paid`) as a map with the `stamp` of the notification that last moved it; a write
moves an aspect only forward, so every read and write touches one bounded item, however many
invoices an account has.
"""

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from billing_webhooks.data import notifications
from billing_webhooks.settings import settings


def _table() -> str:
    return settings().accounts_table_name


def advance(account_key: str, part: str, aspect: str, value: dict[str, Any], *, rewrite: bool = False) -> bool:
    """Set `aspect` of the part to `value` unless the part holds it from a newer notification
    (`value["stamp"]`), or from the same one unless `rewrite`; True when written."""
    written, _ = notifications.conditional_write(
        "update_item",
        "The account view could not be updated; retry later.",
        TableName=_table(),
        Key={"account_key": {"S": account_key}, "part": {"S": part}},
        UpdateExpression="SET #aspect = :value",
        ConditionExpression=f"attribute_not_exists(#aspect) OR #aspect.#stamp {'<=' if rewrite else '<'} :stamp",
        ExpressionAttributeNames={"#aspect": aspect, "#stamp": "stamp"},
        ExpressionAttributeValues=notifications.to_item({":value": value, ":stamp": value["stamp"]}),
    )
    return written


def parts(account_key: str) -> list[dict[str, Any]]:
    """Every part of the account, one Query per page."""
    pages = notifications.dynamodb().get_paginator("query").paginate(
        TableName=_table(),
        KeyConditionExpression="account_key = :key",
        ExpressionAttributeValues={":key": {"S": account_key}},
    )
    try:
        return [notifications.from_item(item) for page in pages for item in page["Items"]]
    except (BotoCoreError, ClientError) as exc:
        raise notifications.fault(exc, "The account cannot be read right now; retry later.") from None
