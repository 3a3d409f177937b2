"""PortalSyncFunction, invoked with `{"member_ids": [...]}` (`billing-webhooks portals sync`):
those portals' app.info asked now (jobs/portal_sync.py)."""

from typing import Any

from billing_webhooks.jobs.portal_sync import sync_now
from billing_webhooks.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"portals": sync_now([str(member_id) for member_id in event.get("member_ids") or []])}
