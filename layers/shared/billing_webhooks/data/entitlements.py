"""EntitlementsTable: one item per portal (`member_id`): the billing account it is linked to and its
current entitlement (domain/entitlements.py). Every DynamoDB call on the table, through the
toolkit.

The link is kept, not computed per read: an operator's (`link_source` operator) wins over the
default one by `account_code` (account_code). The sparse index `by-account` lists the portals
linked to an account, so an account's move reaches them. The entitlement is written only when it
changed, conditional on the version read, so two recomputations never interleave backwards; its
`sequence` counts the changes that told something, and the table's stream (old and new image)
carries each one to the event bus (jobs/entitlement_events.py).
"""

from typing import Any

from billing_webhooks.data import toolkit
from billing_webhooks.settings import settings

BY_ACCOUNT = "by-account"
CHANGES_DUE = "changes-due"  # sparse: entitlements that name a deadline, by changes_shard and changes_at
SHARDS = 10
OPERATOR, ACCOUNT_CODE = "operator", "account_code"
UNAVAILABLE = "The portal's entitlement cannot be reached right now; retry later."
# What items written before the stream carried the events held; gone at their next write.
RETIRED = ("pending_events", "pending_since")


def _table() -> str:
    return settings().entitlements_table_name


def _key(member_id: str) -> dict[str, Any]:
    return {"member_id": member_id}


def get(member_id: str) -> dict[str, Any] | None:
    return toolkit.get(_table(), _key(member_id), UNAVAILABLE)


LINK = ("account_key", "account_id", "link_source")
MOST_CONFLICTS = 20  # accounts kept per portal as conflicting with its link: enough to show who


def link(member_id: str, account_key: str, account_id: Any) -> None:
    """An operator's link: it replaces any, and settles the portal's conflicts."""
    toolkit.update(
        _table(),
        _key(member_id),
        UNAVAILABLE,
        values={"account_key": account_key, "account_id": account_id, "link_source": OPERATOR},
        remove=("link_conflicts",),
    )


def pin_unlinked(member_id: str) -> None:
    """An operator's `links clear`: no account decides the portal, and no default link is made
    until an operator links it again."""
    toolkit.update(
        _table(),
        _key(member_id),
        UNAVAILABLE,
        values={"link_source": OPERATOR},
        remove=("account_key", "account_id", "link_conflicts"),
    )


def link_by_default(member_id: str, account_key: str, account_id: Any) -> tuple[bool, dict[str, Any]]:
    """The default link (by account_code), only to a portal no account or operator decides yet, or
    already this account's: the first stands. (written, the item as it was when refused)."""
    return toolkit.update(
        _table(),
        _key(member_id),
        UNAVAILABLE,
        values={"account_key": account_key, "account_id": account_id, "link_source": ACCOUNT_CODE},
        condition="attribute_not_exists(#link_source) OR (#link_source = :default AND #account_key = :account_key)",
        condition_values={":default": ACCOUNT_CODE},
        return_old=True,
    )


def unlink_default(member_id: str, account_key: str) -> bool:
    """This account's default link gone (its code names the portal no more); an operator's stays."""
    written, _ = toolkit.update(
        _table(),
        _key(member_id),
        UNAVAILABLE,
        remove=LINK,
        condition="#link_source = :default AND #account_key = :account_key",
        condition_values={":default": ACCOUNT_CODE, ":account_key": account_key},
    )
    return written


def note_conflict(member_id: str, account_key: str) -> bool:
    """Another account names a portal already linked: kept to be shown, never applied. True when
    it is new (a redelivery, or the account's next notification, notes nothing)."""
    written, _ = toolkit.update(
        _table(),
        _key(member_id),
        UNAVAILABLE,
        expression="SET #link_conflicts = list_append(if_not_exists(#link_conflicts, :none), :conflict)",
        condition="attribute_not_exists(#link_conflicts) OR "
        "(size(#link_conflicts) < :most AND NOT contains(#link_conflicts, :account_key))",
        condition_values={
            ":none": [],
            ":conflict": [account_key],
            ":account_key": account_key,
            ":most": MOST_CONFLICTS,
        },
    )
    return written


def with_conflicts(limit: int, start_key: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], Any]:
    """Up to `limit` portals whose link another account contests, and where the next page starts."""
    return toolkit.scan_until(
        UNAVAILABLE,
        limit,
        start_key,
        TableName=_table(),
        FilterExpression="attribute_exists(link_conflicts)",
        ProjectionExpression="member_id, account_id, link_source, link_conflicts",
    )


def in_grace(limit: int, start_key: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], Any]:
    """Up to `limit` portals entitled only by a grace period now, and where the next page starts."""
    return toolkit.scan_until(
        UNAVAILABLE,
        limit,
        start_key,
        TableName=_table(),
        FilterExpression="contains(entitlement.reason, :grace)",
        ExpressionAttributeValues={":grace": {"S": "_in_grace"}},
        ProjectionExpression="member_id, entitlement",
    )


def _shard(member_id: str) -> str:
    return str(sum(member_id.encode()) % SHARDS)


def put_entitlement(
    member_id: str, entitlement: dict[str, Any], digest: str, deadline: int | None, version: int, sequence: int
) -> bool:
    """The entitlement, if the item still holds `version` and a different answer (`digest`): True
    when written (as version + 1); False when another recomputation wrote first, or wrote this
    same answer. `deadline`: when the answer changes by itself (`deadline_at`, and the minute's
    check's index `changes_at`); `sequence`: the item's count of changes that told something."""
    values: dict[str, Any] = {
        "entitlement": entitlement,
        "entitlement_digest": digest,
        "entitlement_version": version + 1,
        "sequence": sequence,
    }
    gone: list[str] = list(RETIRED)
    if deadline is None:
        gone += ["deadline_at", "changes_at", "changes_shard"]
    else:
        values |= {"deadline_at": deadline, "changes_at": deadline, "changes_shard": _shard(member_id)}
    written, _ = toolkit.update(
        _table(),
        _key(member_id),
        UNAVAILABLE,
        values=values,
        remove=gone,
        condition="(attribute_not_exists(#entitlement_version) AND :version = :zero) OR "
        "(#entitlement_version = :version AND #entitlement_digest <> :entitlement_digest)",
        condition_values={":version": version, ":zero": 0},
    )
    return written


def due(shard: int, now: int, limit: int = 100) -> list[str]:
    """Portals of one shard whose entitlement named a deadline that has come (soonest first)."""
    items, _ = toolkit.query(
        UNAVAILABLE,
        TableName=_table(),
        IndexName=CHANGES_DUE,
        Limit=limit,
        KeyConditionExpression="changes_shard = :shard AND changes_at <= :now",
        ExpressionAttributeValues={":shard": {"S": str(shard)}, ":now": {"N": str(now)}},
    )
    return [item["member_id"] for item in items]


def linked_to(account_key: str) -> list[str]:
    """The portals linked to an account (bounded: a page of them; an account links a few)."""
    items, _ = toolkit.query(
        UNAVAILABLE,
        TableName=_table(),
        IndexName=BY_ACCOUNT,
        KeyConditionExpression="account_key = :key",
        ExpressionAttributeValues={":key": {"S": account_key}},
        Limit=100,
    )
    return [item["member_id"] for item in items]


def forget(member_id: str) -> None:
    """The portal's entitlement item gone (its administrator asked to erase the app's data)."""
    toolkit.delete(_table(), _key(member_id), UNAVAILABLE)
