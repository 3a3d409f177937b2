"""QuarantineRequeueFunction, invoked by hand once a model is fixed: every quarantined delivery back
on the rescue queue, for ReplayFunction's next run (jobs/quarantine_requeue.py)."""

from typing import Any

from billing_webhooks.jobs.quarantine_requeue import requeue_quarantined
from billing_webhooks.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    requeued = requeue_quarantined()
    logger.info("quarantine requeued", extra={"requeued": requeued})
    return {"requeued": requeued}
