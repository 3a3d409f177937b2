"""ReplayFunction, every 5 minutes or invoked by hand: run parked deliveries through their
functions again; `{"requeue_quarantined": true}` first sends the quarantined back to be replayed."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from billing_webhooks.observability import logger, metrics
from billing_webhooks.recovery.replay import invoke_function, replay_parked, requeue_quarantined


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    requeued = requeue_quarantined() if isinstance(event, dict) and event.get("requeue_quarantined") is True else 0
    # Leave a minute for the last Invoke to finish within the function's own timeout.
    counts = replay_parked(invoke_function, lambda: context.get_remaining_time_in_millis() > 60_000)
    if requeued:
        counts["requeued"] = requeued
    for name, value in counts.items():
        metrics.add_metric(name="Replay" + name.title().replace("_", ""), unit=MetricUnit.Count, value=value)
    logger.info("replay run", extra=counts)
    return counts
