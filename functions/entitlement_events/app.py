"""EntitlementEventsFunction, on EntitlementsTable's stream: each told change's events on
BillingEventsBus, in order (jobs/entitlement_events.py)."""

from typing import Any

from billing_webhooks.jobs.entitlement_events import publish_in_order
from billing_webhooks.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return publish_in_order(event)
