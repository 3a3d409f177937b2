"""PortalTokensTable: each portal's OAuth tokens, sealed (data/envelope.py), keyed by `member_id`.

Every DynamoDB call on the table. A refresh is claimed before it is made: the claim bumps
`version` and sets a short lease, conditional on the version the claimer read, so of any number
of callers racing one wins and the others re-read (domain/portal_tokens.py). The refreshed pair
replaces the old one in one conditional write on the claimed version.
"""

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from billing_webhooks.data import notifications
from billing_webhooks.settings import settings

UNAVAILABLE = "The portal's tokens cannot be reached right now; retry later."


def _table() -> str:
    return settings().portal_tokens_table_name


def _key(member_id: str) -> dict[str, Any]:
    return {"member_id": {"S": member_id}}


def get(member_id: str) -> dict[str, Any] | None:
    try:
        answer = notifications.dynamodb().get_item(TableName=_table(), Key=_key(member_id), ConsistentRead=True)
    except (BotoCoreError, ClientError) as exc:
        raise notifications.fault(exc, UNAVAILABLE) from None
    return notifications.from_item(answer["Item"]) if "Item" in answer else None


def _update(member_id: str, expression: str, condition: str | None, values: dict[str, Any]) -> bool:
    request: dict[str, Any] = {
        "TableName": _table(),
        "Key": _key(member_id),
        "UpdateExpression": expression,
        "ExpressionAttributeValues": notifications.to_item(values),
    }
    if condition:
        request["ConditionExpression"] = condition
    written, _ = notifications.conditional_write("update_item", UNAVAILABLE, **request)
    return written


def put_issued(
    member_id: str, sealed: dict[str, str], access_expires_at: int, server_endpoint: str, issued_at: str
) -> None:
    """Tokens Bitrix24 just issued outside a claimed refresh (an install's check of its member_id):
    the newest pair, whatever was kept; a refresh in flight then fails its write and re-reads."""
    _update(
        member_id,
        "SET data_key = :data_key, sealed = :sealed, access_expires_at = :expires, server_endpoint = :server,"
        " issued_at = :issued, version = if_not_exists(version, :zero) + :one REMOVE refreshing_until, refused",
        None,
        {
            ":data_key": sealed["data_key"],
            ":sealed": sealed["sealed"],
            ":expires": access_expires_at,
            ":server": server_endpoint,
            ":issued": issued_at,
            ":zero": 0,
            ":one": 1,
        },
    )


def claim_refresh(member_id: str, version: int, now: int, lease_until: int) -> bool:
    """True when this caller may refresh: nobody changed the tokens since it read `version`, and no
    other claim's lease is running. The claim holds `version + 1`."""
    return _update(
        member_id,
        "SET refreshing_until = :lease, version = version + :one",
        "version = :version AND (attribute_not_exists(refreshing_until) OR refreshing_until < :now)",
        {":lease": lease_until, ":one": 1, ":version": version, ":now": now},
    )


def put_refreshed(member_id: str, claimed: int, sealed: dict[str, str], access_expires_at: int, issued_at: str) -> bool:
    """The rotated pair in place of the old, if the claim `claimed` still holds (one write)."""
    return _update(
        member_id,
        "SET data_key = :data_key, sealed = :sealed, access_expires_at = :expires, issued_at = :issued,"
        " version = version + :one REMOVE refreshing_until",
        "version = :claimed",
        {
            ":data_key": sealed["data_key"],
            ":sealed": sealed["sealed"],
            ":expires": access_expires_at,
            ":issued": issued_at,
            ":one": 1,
            ":claimed": claimed,
        },
    )


def release(member_id: str, claimed: int, refused: str | None = None) -> bool:
    """The claim given up (the refresh failed); `refused`: Bitrix24 will never take these tokens."""
    if refused:
        return _update(
            member_id,
            "SET refused = :refused, version = version + :one REMOVE refreshing_until",
            "version = :claimed",
            {":refused": refused, ":one": 1, ":claimed": claimed},
        )
    return _update(member_id, "REMOVE refreshing_until", "version = :claimed", {":claimed": claimed})
