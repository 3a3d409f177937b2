"""One installation record per Bitrix24 portal (InstallationsTable, keyed by `member_id`).

ONAPPINSTALL writes it once the portal confirmed the install, ONAPPUPDATE replaces the token,
ONAPPUNINSTALL marks it uninstalled, ONAPPPAYMENT refreshes the licence state. The application
token is kept only as its SHA-256 and compared in constant time. Every write is conditional on
the event's `ts`, so an older event never overwrites what a newer one wrote.
"""

import hmac
import re
from datetime import datetime, timedelta
from typing import Any

from billing_webhooks import storage
from billing_webhooks.models.base import utc_timestamp
from billing_webhooks.models.bitrix24 import (
    AppInfo,
    AppInstallEvent,
    AppPaymentEvent,
    AppUninstallEvent,
    AppUpdateEvent,
    Bitrix24Event,
    Days,
)
from billing_webhooks.settings import settings

INSTALLED = "installed"
UNINSTALLED = "uninstalled"


def _table() -> str:
    return settings().installations_table_name


def digest_matches(installation: dict[str, Any], digest: str) -> bool:
    stored = str(installation.get("application_token_sha256") or "")
    return hmac.compare_digest(stored.encode(), digest.encode())


def get(member_id: str) -> dict[str, Any] | None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        answer = storage.dynamodb().get_item(
            TableName=_table(), Key={"member_id": {"S": member_id}}, ConsistentRead=True
        )
    except (BotoCoreError, ClientError) as exc:
        raise storage.fault(exc, "The portal's installation cannot be read right now; retry later.") from None
    return storage.from_item(answer["Item"]) if "Item" in answer else None


def _write(operation: str, ts_attribute: str, ts: int, **request: Any) -> bool | None:
    """A conditional write of an event stamped `ts`: True when written; False when refused because
    the installation holds a newer event (`ts_attribute`): the event is stale; None when refused
    for another reason (the same event applied already, or nothing to apply it to)."""
    written, old = storage.conditional_write(
        operation, "The portal's installation could not be saved; retry later.", TableName=_table(),
        ReturnValuesOnConditionCheckFailure="ALL_OLD", **request
    )
    if written:
        return True
    return False if old.get(ts_attribute) is not None and int(old[ts_attribute]) > ts else None


def _update(
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
        "update_item", ts_attribute, values[ts_attribute],
        Key={"member_id": {"S": member_id}},
        UpdateExpression=expression,
        ConditionExpression=condition,
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=storage.to_item(placeholders),
    )


def _event_ts(event: Bitrix24Event) -> int:
    return int(event.ts.timestamp())


def _licence(status: Any, payment_expired: Any, days: Days, as_of: datetime) -> dict[str, Any]:
    """Licence state as of an event; paid-until is the day DAYS runs out, counted from the event."""
    licence: dict[str, Any] = {
        name: str(value) for name, value in (("licence_status", status), ("payment_expired", payment_expired)) if value
    }
    if days is not None:
        licence["days"] = days
        licence["paid_until"] = (as_of + timedelta(days=days)).date().isoformat()
    return licence


def installation_record(event: AppInstallEvent, info: AppInfo, now: datetime) -> dict[str, Any]:
    ts = _event_ts(event)
    record = {
        "member_id": event.auth.member_id,
        "domain": event.auth.domain.lower(),
        "client_endpoint": event.auth.client_endpoint,
        "server_endpoint": event.auth.server_endpoint,
        "status": INSTALLED,
        "app_version": event.data.VERSION,
        "language_id": event.data.LANGUAGE_ID or info.LANGUAGE_ID,
        "application_token_sha256": event.auth.application_token_sha256,
        "installed_at": utc_timestamp(now),
        "updated_at": utc_timestamp(now),
        "lifecycle_ts": ts,
        "licence": info.LICENSE,
        "licence_ts": ts,
        **_licence(info.STATUS, info.PAYMENT_EXPIRED, info.DAYS, event.ts),
    }
    return {name: value for name, value in record.items() if value is not None}


def install(event: AppInstallEvent, info: AppInfo, now: datetime) -> bool | None:
    """A new (or re-)installation, confirmed by the portal: the whole record is written afresh."""
    record = installation_record(event, info, now)
    return _write(
        "put_item", "lifecycle_ts", record["lifecycle_ts"],
        Item=storage.to_item(record),
        # A member_id seen on one domain is never moved to another by an install naming it,
        # installed or uninstalled (only an operator moves it): held here, under any race.
        ConditionExpression="attribute_not_exists(member_id) OR (lifecycle_ts < :ts AND #domain = :domain)",
        ExpressionAttributeNames={"#domain": "domain"},
        ExpressionAttributeValues=storage.to_item({":ts": record["lifecycle_ts"], ":domain": record["domain"]}),
    )


def update(event: AppUpdateEvent, info: AppInfo, now: datetime) -> bool | None:
    """A new app version on an installed portal: the new token replaces the old one."""
    values = {
        "app_version": event.data.VERSION,
        "application_token_sha256": event.auth.application_token_sha256,
        "client_endpoint": event.auth.client_endpoint,
        "server_endpoint": event.auth.server_endpoint,
        "updated_at": utc_timestamp(now),
        "lifecycle_ts": _event_ts(event),
    }
    if event.data.LANGUAGE_ID:
        values["language_id"] = event.data.LANGUAGE_ID
    condition = "attribute_exists(member_id) AND #status = :installed AND #lifecycle_ts < :lifecycle_ts"
    return _update(event.auth.member_id, values, condition, condition_values={":installed": INSTALLED})


def uninstall(event: AppUninstallEvent, installation: dict[str, Any] | None, now: datetime) -> bool | None:
    """The portal removed the app: its events are refused from now on."""
    if installation is None:  # known only from the configured secret map: nothing to mark
        return None
    values = {"status": UNINSTALLED, "uninstalled_at": utc_timestamp(now), "lifecycle_ts": _event_ts(event)}
    return _update(event.auth.member_id, values, "attribute_exists(member_id) AND #lifecycle_ts < :lifecycle_ts")


def refresh_licence(event: AppPaymentEvent, installation: dict[str, Any] | None, now: datetime) -> bool | None:
    """ONAPPPAYMENT's licence state onto the installation, unless a newer event already set it."""
    if installation is None:
        return None
    licence = _licence(event.data.STATUS, event.data.PAYMENT_EXPIRED, event.data.DAYS, event.ts)
    values = {**licence, "licence_ts": _event_ts(event), "licence_updated_at": utc_timestamp(now)}
    gone = tuple(name for name in ("days", "paid_until") if name not in licence)
    condition = "attribute_exists(member_id) AND (attribute_not_exists(#licence_ts) OR #licence_ts < :licence_ts)"
    return _update(event.auth.member_id, values, condition, remove=gone)
