"""ReplayFunction, every 5 minutes: run parked deliveries through their functions again
(jobs/replay.py). QuarantineRequeueFunction sends the quarantined back to be replayed."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from billing_webhooks.jobs.replay import invoke_function, replay_parked
from billing_webhooks.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    # Leave a minute for the last Invoke to finish within the function's own timeout.
    counts = replay_parked(invoke_function, lambda: context.get_remaining_time_in_millis() > 60_000)
    for name, value in counts.items():
        metrics.add_metric(name="Replay" + name.title().replace("_", ""), unit=MetricUnit.Count, value=value)
    logger.info("replay run", extra=counts)
    return counts
