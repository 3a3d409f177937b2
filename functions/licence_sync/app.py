"""LicenceSyncFunction: on its schedule, every portal whose licence check is due asks app.info
(recovery/licence_runs.py); invoked with `{"member_ids": [...]}` (`billing-webhooks portals
sync`), those portals now; every minute with `{"deadlines": true}`, the entitlements whose
deadline has come are decided again; on InstallationsTable's stream, the entitlement of each
portal whose installation was written (an install, an uninstall, a payment)."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from billing_webhooks.observability import logger, metrics
from billing_webhooks.recovery.licence_runs import installation_changed, run_deadlines, run_due, sync_now

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def installation_written(record: DynamoDBRecord) -> None:
    if installation_changed(record.dynamodb.keys["member_id"]):
        metrics.add_metric(name="EntitlementsChanged", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if isinstance(event, dict) and "Records" in event:
        return process_partial_response(
            event=event, record_handler=installation_written, processor=processor, context=context
        )
    if isinstance(event, dict) and isinstance(event.get("member_ids"), list):
        return {"portals": sync_now(event["member_ids"])}
    if isinstance(event, dict) and event.get("deadlines") is True:
        return run_deadlines()
    counts = run_due(context.get_remaining_time_in_millis)
    for outcome, value in counts.items():
        metrics.add_metric(
            name="LicenceSync" + outcome.title().replace(" ", "").replace(":", ""), unit=MetricUnit.Count, value=value
        )
    logger.info("licence sync run", extra=counts)
    return counts
