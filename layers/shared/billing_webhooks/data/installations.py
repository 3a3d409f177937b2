"""InstallationsTable: one installation record per Bitrix24 portal, keyed by `member_id`.

Every DynamoDB call on the table. What the records say and when an event may change them is
domain/lifecycle.py's: every write here is conditional, and tells stale from already applied.
"""

import re
from typing import Any

from billing_webhooks.data import toolkit
from billing_webhooks.settings import settings

INSTALLED = "installed"
UNINSTALLED = "uninstalled"
SYNC_INDEX = "licence-sync"  # sparse: installed portals with kept tokens, by sync_shard and next_check_at
SYNC_SHARDS = 10
BY_DOMAIN = "by-domain"


def _table() -> str:
    return settings().installations_table_name


UNREADABLE = "The portal's installation cannot be read right now; retry later."


def get(member_id: str) -> dict[str, Any] | None:
    return toolkit.get(_table(), {"member_id": member_id}, UNREADABLE)


def _write(operation: str, ts_attribute: str, ts: int, **request: Any) -> bool | None:
    """A conditional write of an event stamped `ts`: True when written; False when refused because
    the installation holds a newer event (`ts_attribute`): the event is stale; None when refused
    for another reason (the same event applied already, or nothing to apply it to)."""
    written, old = toolkit.conditional_write(
        operation,
        "The portal's installation could not be saved; retry later.",
        TableName=_table(),
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
        **request,
    )
    if written:
        return True
    return False if old.get(ts_attribute) is not None and int(old[ts_attribute]) > ts else None


_UNBOUND = "(attribute_not_exists(vouched) OR vouched <> :true)"
VOUCHED_INSTALL = f"attribute_not_exists(member_id) OR {_UNBOUND} OR (lifecycle_ts < :ts AND #domain = :domain)"
UNVOUCHED_INSTALL = f"attribute_not_exists(member_id) OR ({_UNBOUND} AND lifecycle_ts < :ts)"


def put_installation(record: dict[str, Any]) -> bool | None:
    """The whole record, written afresh by a (re-)install stamped `lifecycle_ts`. A member_id
    vouched for on one domain is never moved to another by an install naming it, installed or
    uninstalled (only an operator moves it); one never vouched for blocks no vouched install, and
    never replaces a vouched record: held here, under any race."""
    vouched = record.get("vouched") is True
    values = {":ts": record["lifecycle_ts"], ":true": True, **({":domain": record["domain"]} if vouched else {})}
    return _write(
        "put_item",
        "lifecycle_ts",
        record["lifecycle_ts"],
        Item=toolkit.to_item(record),
        ConditionExpression=VOUCHED_INSTALL if vouched else UNVOUCHED_INSTALL,
        **({"ExpressionAttributeNames": {"#domain": "domain"}} if vouched else {}),
        ExpressionAttributeValues=toolkit.to_item(values),
    )


def update_installation(
    member_id: str,
    values: dict[str, Any],
    condition: str,
    *,
    condition_values: dict[str, Any] | None = None,
    remove: tuple[str, ...] = (),
) -> bool | None:
    """SET `values` (and REMOVE `remove`) if `condition` holds; every #name maps to itself. The
    event's stamp is `values[ts_attribute]` (lifecycle_ts or licence_ts)."""
    expression = "SET " + ", ".join(f"#{name} = :{name}" for name in values)
    if remove:
        expression += " REMOVE " + ", ".join(f"#{name}" for name in remove)
    names = {f"#{name}": name for name in re.findall(r"#(\w+)", f"{expression} {condition}")}
    placeholders = {f":{name}": value for name, value in values.items()} | (condition_values or {})
    ts_attribute = "licence_ts" if "licence_ts" in values else "lifecycle_ts"
    return _write(
        "update_item",
        ts_attribute,
        values[ts_attribute],
        Key={"member_id": {"S": member_id}},
        UpdateExpression=expression,
        ConditionExpression=condition,
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=toolkit.to_item(placeholders),
    )


def due(
    shard: str, now: int, *, limit: int = 100, start_key: dict[str, Any] | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """A page of the portals of one shard whose check is due at `now`, soonest first, and where
    the next page starts (None: no more)."""
    request: dict[str, Any] = {
        "TableName": _table(),
        "IndexName": SYNC_INDEX,
        "Limit": limit,
        "KeyConditionExpression": "sync_shard = :shard AND next_check_at <= :now",
        "ExpressionAttributeValues": {":shard": {"S": shard}, ":now": {"N": str(now)}},
    }
    if start_key:
        request["ExclusiveStartKey"] = start_key
    return toolkit.query("The portals due for a licence check cannot be read right now.", **request)


def claim_check(member_id: str, due_at: int, until: int) -> bool:
    """Take a due portal for one run: its next check moves to `until` (when another run may take it,
    should this one die) if it is still `due_at`; False when another run took it first."""
    written, _ = toolkit.conditional_write(
        "update_item",
        "The portal's licence check cannot be claimed right now.",
        TableName=_table(),
        Key={"member_id": {"S": member_id}},
        UpdateExpression="SET next_check_at = :until",
        ConditionExpression="next_check_at = :due",
        ExpressionAttributeValues={":until": {"N": str(until)}, ":due": {"N": str(due_at)}},
    )
    return written


def record_check(member_id: str, values: dict[str, Any], remove: tuple[str, ...] = ()) -> bool:
    """How a licence check went (and when the next is due) onto an installed portal; REMOVE
    `remove` (the sync attributes, to leave the index). False when it is no longer installed."""
    expression = "SET " + ", ".join(f"#{name} = :{name}" for name in values) if values else ""
    if remove:
        expression += " REMOVE " + ", ".join(f"#{name}" for name in remove)
    request: dict[str, Any] = {
        "TableName": _table(),
        "Key": {"member_id": {"S": member_id}},
        "UpdateExpression": expression.strip(),
        "ConditionExpression": "#status = :installed",
        "ExpressionAttributeNames": {f"#{name}": name for name in (*values, *remove, "status")},
        "ExpressionAttributeValues": toolkit.to_item(
            {":installed": INSTALLED, **{f":{name}": value for name, value in values.items()}}
        ),
    }
    written, _ = toolkit.conditional_write("update_item", "The portal's licence check could not be saved.", **request)
    return written


def mark_vouched(member_id: str, domain: str, vouched_at: str) -> bool:
    """An install kept unvouched, now vouched for by Bitrix24's OAuth server (on the domain it was
    installed on, still installed, still unvouched): its identity is bound from now on."""
    written, _ = toolkit.update(
        _table(),
        {"member_id": member_id},
        "The portal's installation could not be saved.",
        values={"vouched": True, "vouched_at": vouched_at},
        condition=f"#status = :installed AND #domain = :domain AND {_UNBOUND}",
        condition_values={":installed": INSTALLED, ":domain": domain, ":true": True},
    )
    return written


def on_domain(domain: str) -> list[str]:
    """The member_ids installed (or once installed) on a portal domain: a few at most."""
    items, _ = toolkit.query(
        UNREADABLE,
        TableName=_table(),
        IndexName=BY_DOMAIN,
        KeyConditionExpression="#domain = :domain",
        Limit=10,
        ExpressionAttributeNames={"#domain": "domain"},
        ExpressionAttributeValues={":domain": {"S": domain}},
    )
    return [item["member_id"] for item in items]


AUDIT = ("member_id", "domain", "status", "vouched", "installed_at", "uninstalled_at", "lifecycle_ts", "purged_at")


def reduce_to_audit(member_id: str, lifecycle_ts: int, purged_at: str) -> bool:
    """The uninstalled portal's record cut to its audit (who, where, when installed and
    uninstalled, that it was purged; `vouched` and `lifecycle_ts` keep its identity bound and its
    order), if it is still the uninstall stamped `lifecycle_ts`: False when a reinstall came since."""
    kept = get(member_id)
    if kept is None:
        return False
    gone = tuple(name for name in kept if name not in AUDIT)
    written, _ = toolkit.update(
        _table(),
        {"member_id": member_id},
        UNREADABLE,
        values={"purged_at": purged_at},
        remove=gone,
        condition="#status = :uninstalled AND #lifecycle_ts = :ts",
        condition_values={":uninstalled": UNINSTALLED, ":ts": lifecycle_ts},
    )
    return written


# An operator's lists (`billing-webhooks portals list`): a filtered Scan each.
LISTS = {
    "unreachable": ("attribute_exists(unreachable_because)", {}),
    "tokens-in-doubt": ("unreachable_because = :doubt", {":doubt": {"S": "tokens_in_doubt"}}),
    "not-vouched": ("attribute_not_exists(vouched) OR vouched <> :true", {":true": {"BOOL": True}}),
}


def listed(
    which: str, limit: int, start_key: dict[str, Any] | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    condition, values = LISTS[which]
    return toolkit.scan_until(
        UNREADABLE,
        limit,
        start_key,
        TableName=_table(),
        FilterExpression=condition,
        ProjectionExpression="member_id, #domain, #status, vouched, unreachable_because, unreachable_since",
        ExpressionAttributeNames={"#domain": "domain", "#status": "status"},
        **({"ExpressionAttributeValues": values} if values else {}),
    )
