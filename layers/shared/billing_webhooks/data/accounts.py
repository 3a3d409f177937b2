"""AccountsTable: the account view, one item per part of an account (domain/accounts.py).

Key: `account_key` (`billing#504`) and `part`: the singles `profile`, `state` and `trial`, and
one item per listed thing, `invoice#…`, `product#…`, `balance#…`, whose key the domain bounds
(names of any length), with the name as sent in `name`. An item keeps each aspect of its part
(an invoice's `issued`, `unpaid` and `paid`) as a map with the `stamp` of the notification that
last moved it; a write moves an aspect only forward, so every read and write touches one bounded
item, however many invoices an account has. An invoice that is unpaid and not paid carries
`open_account` (its account key): the sparse `open-invoices` index lists an account's open
invoices without reading the others.
"""

from typing import Any

from billing_webhooks.data import toolkit
from billing_webhooks.settings import settings

OPEN_INVOICES_INDEX = "open-invoices"
# Every list part's kind (balance#, invoice#, product#) sorts below this, the singles from it on.
FIRST_SINGLE_PART = "profile"
UNAVAILABLE = "The account cannot be read right now; retry later."
# A rebuild rewrites an aspect its own notification wrote under other rules: only if it differs,
# so that what it counts is what it changed.
REWRITE = " OR (#aspect.#stamp = :stamp AND #aspect <> :value)"


def _table() -> str:
    return settings().accounts_table_name


def _key(account_key: str, part: str) -> dict[str, Any]:
    return {"account_key": {"S": account_key}, "part": {"S": part}}


def advance(
    account_key: str,
    part: str,
    aspect: str,
    value: dict[str, Any],
    *,
    name: Any = None,
    rewrite: bool = False,
    closes: bool = False,
) -> bool:
    """Set `aspect` of the part to `value` unless the part holds it from a newer notification
    (`value["stamp"]`), or from the same one (unless `rewrite` and what it holds differs); True
    when written. `name`: the listed thing's name as sent; `closes`: the part leaves the
    open-invoices index."""
    expression = "SET #aspect = :value" + (", #name = :name" if name is not None else "")
    names = {"#aspect": aspect, "#stamp": "stamp", **({"#name": "name"} if name is not None else {})}
    if closes:
        expression += " REMOVE open_account"
    written, _ = toolkit.conditional_write(
        "update_item",
        "The account view could not be updated; retry later.",
        TableName=_table(),
        Key=_key(account_key, part),
        UpdateExpression=expression,
        ConditionExpression="attribute_not_exists(#aspect) OR #aspect.#stamp < :stamp" + (REWRITE if rewrite else ""),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=toolkit.to_item(
            {":value": value, ":stamp": value["stamp"], **({":name": name} if name is not None else {})}
        ),
    )
    return written


def open_if_unpaid(account_key: str, part: str) -> None:
    """List the invoice as open unless a payment names it (checked in the same write, so a payment
    landing at any moment removes it for good)."""
    toolkit.conditional_write(
        "update_item",
        "The account view could not be updated; retry later.",
        TableName=_table(),
        Key=_key(account_key, part),
        UpdateExpression="SET open_account = :account",
        ConditionExpression="attribute_exists(unpaid) AND attribute_not_exists(paid)",
        ExpressionAttributeValues={":account": {"S": account_key}},
    )


def singles(account_key: str) -> list[dict[str, Any]]:
    """The account's profile, state and trial: one Query."""
    items, _ = toolkit.query(
        UNAVAILABLE,
        TableName=_table(),
        KeyConditionExpression="account_key = :key AND part >= :first",
        ExpressionAttributeValues={":key": {"S": account_key}, ":first": {"S": FIRST_SINGLE_PART}},
    )
    return items


# What each invoice status means as a filter on its aspects (open ones come from the index).
STATUS_FILTERS = {
    "paid": "attribute_exists(paid)",
    "issued": "attribute_not_exists(paid) AND attribute_not_exists(unpaid)",
}


def _listing(account_key: str, prefix: str, status: str | None) -> dict[str, Any]:
    """The Query of the account's parts starting with `prefix`; open invoices come from the index."""
    key = "open_account" if status == "unpaid" else "account_key"
    request: dict[str, Any] = {
        "KeyConditionExpression": f"{key} = :key AND begins_with(part, :prefix)",
        "ExpressionAttributeValues": {":key": {"S": account_key}, ":prefix": {"S": prefix}},
    }
    if status == "unpaid":
        request["IndexName"] = OPEN_INVOICES_INDEX
    elif status is not None:
        request["FilterExpression"] = STATUS_FILTERS[status]
    return request


def page(
    account_key: str, prefix: str, *, limit: int, status: str | None = None, start_key: dict[str, Any] | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One Query of the account's parts whose key starts with `prefix`, in key order: (items,
    where the next page starts, or None). With a status, a page may hold fewer than `limit`."""
    request = {**_listing(account_key, prefix, status), "Limit": limit}
    if start_key is not None:
        request["ExclusiveStartKey"] = start_key
    return toolkit.query(UNAVAILABLE, TableName=_table(), **request)


def count(account_key: str, prefix: str, status: str | None = None) -> int:
    """How many of the account's parts start with `prefix` (Select COUNT: no item is sent)."""
    return toolkit.count(UNAVAILABLE, TableName=_table(), **_listing(account_key, prefix, status))
