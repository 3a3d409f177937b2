"""InstallationChangesFunction, on InstallationsTable's stream (old and new image): an installation
write that moved what an entitlement's decision reads (an install, an update, an uninstall, a
payment, a licence that a check moved) decides the portal's entitlement again, off the delivery
path. A write that moved none of it (a check's bookkeeping, a claim) costs nothing more: this
stream is the one path from an installation to its entitlement.
"""

from typing import Any

from billing_webhooks.data import toolkit
from billing_webhooks.domain import entitlement_updates

# What domain/entitlements.decide reads of an installation (through domain/licence.licence_state).
DECIDED_FROM = (
    "status",
    "vouched",
    "licence_status",
    "licence_ts",
    "licence_source",
    "payment_expired",
    "days",
    "licence_ends_at",
    "unreachable_because",
)


def moves_entitlement(record: dict[str, Any]) -> bool:
    change = record.get("dynamodb") or {}
    new, old = change.get("NewImage") or {}, change.get("OldImage") or {}
    return any(new.get(name) != old.get(name) for name in DECIDED_FROM)


def installation_written(record: dict[str, Any]) -> bool:
    """Decide the portal's entitlement again if this write can move it; whether it changed. An
    outage raises: the stream delivers the record again."""
    if not moves_entitlement(record):
        return False
    member_id = toolkit.from_item(record["dynamodb"]["Keys"])["member_id"]
    return entitlement_updates.recompute(member_id)[1]
