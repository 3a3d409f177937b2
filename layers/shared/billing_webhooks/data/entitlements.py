"""EntitlementsTable: one item per portal (`member_id`): the billing account it is linked to and
its current entitlement (domain/entitlements.py). Every DynamoDB call on the table.

The link is kept, not computed per read: an operator's (`link_source` operator) wins over the
default one by `account_code` (account_code). The sparse index `by-account` lists the portals
linked to an account, so an account's move reaches them. The entitlement is written only when
it changed, conditional on the version read, so two recomputations never interleave backwards.
"""

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from billing_webhooks.data import notifications
from billing_webhooks.settings import settings

BY_ACCOUNT = "by-account"
CHANGES_DUE = "changes-due"  # sparse: entitlements that name a deadline, by changes_shard and changes_at
SHARDS = 10
OPERATOR, ACCOUNT_CODE = "operator", "account_code"
UNAVAILABLE = "The portal's entitlement cannot be reached right now; retry later."


def _table() -> str:
    return settings().entitlements_table_name


def get(member_id: str) -> dict[str, Any] | None:
    try:
        answer = notifications.dynamodb().get_item(TableName=_table(), Key={"member_id": {"S": member_id}},
                                                   ConsistentRead=True)
    except (BotoCoreError, ClientError) as exc:
        raise notifications.fault(exc, UNAVAILABLE) from None
    return notifications.from_item(answer["Item"]) if "Item" in answer else None


def _update(member_id: str, expression: str, values: dict[str, Any], condition: str | None = None) -> bool:
    request: dict[str, Any] = {"TableName": _table(), "Key": {"member_id": {"S": member_id}},
                               "UpdateExpression": expression}
    if values:
        request["ExpressionAttributeValues"] = notifications.to_item(values)
    if condition:
        request["ConditionExpression"] = condition
    written, _ = notifications.conditional_write("update_item", UNAVAILABLE, **request)
    return written


def link(member_id: str, account_key: str, account_id: Any, source: str) -> bool:
    """Link the portal to an account. A default link (account_code) never replaces an operator's."""
    condition = None if source == OPERATOR else "attribute_not_exists(link_source) OR link_source <> :operator"
    values = {":key": account_key, ":id": account_id, ":source": source}
    if condition:
        values[":operator"] = OPERATOR
    return _update(member_id, "SET account_key = :key, account_id = :id, link_source = :source", values, condition)


def unlink(member_id: str) -> None:
    _update(member_id, "REMOVE account_key, account_id, link_source", {})


def put_entitlement(member_id: str, entitlement: dict[str, Any], digest: str, changes_at: int | None,
                    version: int, told: list[dict[str, Any]]) -> bool:
    """The entitlement, if it differs (`digest`) from what the item holds at `version`, with the
    events that tell of it (`pending_events`, the outbox: published, then cleared); False when it
    is the same, or another recomputation wrote first (that one read newer inputs)."""
    expression = ("SET entitlement = :entitlement, entitlement_digest = :digest, entitlement_version = :next,"
                  " pending_events = :told")
    values: dict[str, Any] = {":entitlement": entitlement, ":digest": digest, ":next": version + 1,
                              ":version": version, ":told": told}
    if changes_at is not None:
        expression += ", changes_at = :changes_at, changes_shard = :shard"
        values.update({":changes_at": changes_at, ":shard": str(sum(member_id.encode()) % SHARDS)})
    else:
        expression += " REMOVE changes_at, changes_shard"
    condition = ("(attribute_not_exists(entitlement_version) AND :version = :zero) OR "
                 "(entitlement_version = :version AND entitlement_digest <> :digest)")
    values[":zero"] = 0
    return _update(member_id, expression, values, condition)


def events_published(member_id: str, version: int) -> None:
    """The outbox emptied of the events of `version` (a newer version's stay to be published)."""
    _update(member_id, "REMOVE pending_events", {":version": version}, "entitlement_version = :version")


def due(shard: int, now: int, limit: int = 100) -> list[str]:
    """Portals of one shard whose entitlement named a deadline that has come (soonest first)."""
    try:
        answer = notifications.dynamodb().query(
            TableName=_table(), IndexName=CHANGES_DUE, Limit=limit,
            KeyConditionExpression="changes_shard = :shard AND changes_at <= :now",
            ExpressionAttributeValues={":shard": {"S": str(shard)}, ":now": {"N": str(now)}})
    except (BotoCoreError, ClientError) as exc:
        raise notifications.fault(exc, UNAVAILABLE) from None
    return [item["member_id"]["S"] for item in answer.get("Items", [])]


def linked_to(account_key: str) -> list[str]:
    """The portals linked to an account (bounded: a page of them; an account links a few)."""
    try:
        answer = notifications.dynamodb().query(
            TableName=_table(), IndexName=BY_ACCOUNT, KeyConditionExpression="account_key = :key",
            ExpressionAttributeValues={":key": {"S": account_key}}, Limit=100)
    except (BotoCoreError, ClientError) as exc:
        raise notifications.fault(exc, UNAVAILABLE) from None
    return [item["member_id"]["S"] for item in answer.get("Items", [])]
