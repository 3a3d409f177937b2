"""AlertRedriveFunction, every 5 minutes: publish alerts whose lease expired while still pending."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from billing_webhooks.jobs.alert_redrive import redrive
from billing_webhooks.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    result = redrive()
    metrics.add_metric(name="AlertsRedriven", unit=MetricUnit.Count, value=result["published"])
    metrics.add_metric(name="AlertRedriveFailures", unit=MetricUnit.Count, value=result["failed"])
    logger.info("alert redrive", extra=result)
    return result
