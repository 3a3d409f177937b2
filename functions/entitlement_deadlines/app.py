"""EntitlementDeadlinesFunction, every minute: entitlements whose deadline has come, decided again
(jobs/entitlement_deadlines.py)."""

from typing import Any

from billing_webhooks.jobs.entitlement_deadlines import run_deadlines
from billing_webhooks.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    return run_deadlines()
