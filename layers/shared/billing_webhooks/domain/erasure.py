"""What an uninstall erases (docs/security.md, "Uninstall"). Bitrix24 revokes an uninstalled app's
tokens; we destroy the sealed pair we kept at once, so nothing of the portal's can be opened
later. With `CLEAN` (its administrator asked to delete the app's data), the portal's other data
goes too: its lifecycle records, its entitlement, and every attribute of its installation but an
audit record (member_id, domain, install and uninstall instants, that it was purged; whether it
was vouched and its last event's stamp, so that its identity stays bound and no older event
revives it). Each step is idempotent: a replayed uninstall erases nothing twice.
"""

from datetime import datetime

from aws_lambda_powertools.metrics import MetricUnit

from billing_webhooks.data import entitlements, installations, notifications, tokens
from billing_webhooks.models.base import utc_timestamp
from billing_webhooks.observability import logger, metrics


def after_uninstall(member_id: str, clean: bool, lifecycle_ts: int, now: datetime) -> None:
    if tokens.forget(member_id, utc_timestamp(now)):
        metrics.add_metric(name="PortalTokensDestroyed", unit=MetricUnit.Count, value=1)
    if not clean:
        return
    if not installations.reduce_to_audit(member_id, lifecycle_ts, utc_timestamp(now)):
        return  # reinstalled since: its new data is not the erased install's
    records = notifications.forget_account(f"bitrix24#{member_id}")
    entitlements.forget(member_id)
    metrics.add_metric(name="PortalPurged", unit=MetricUnit.Count, value=1)
    logger.info("portal data purged (CLEAN)", extra={"member_id": member_id, "records": records})


def purged(installation: dict | None) -> bool:
    """Its administrator erased the app's data: no entitlement is kept for it."""
    return installation is not None and "purged_at" in installation
