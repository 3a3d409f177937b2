"""LicenceSyncRunFunction, on its schedule: every portal whose licence check is due asks app.info
(jobs/licence_sync_run.py)."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from billing_webhooks.jobs.licence_sync_run import run_due
from billing_webhooks.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    counts = run_due(context.get_remaining_time_in_millis)
    for outcome, value in counts.items():
        name = "LicenceSync" + outcome.title().replace(" ", "").replace(":", "")
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    logger.info("licence sync run", extra=counts)
    return counts
