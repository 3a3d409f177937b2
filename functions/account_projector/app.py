"""AccountProjectorFunction: NotificationsTable's stream (new records) into the account view
(jobs/account_projection.py).

Powertools batch processing reports each failed record, so Lambda retries only those (bisecting
the batch, a bounded number of times, then the on-failure queue). A record the view can never
take is skipped and named on that queue at once. The accounts a batch moved then move the
entitlements of their portals (docs/entitlements.md). The rebuild is AccountRebuildFunction's.
"""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)

from billing_webhooks.jobs.account_projection import entitlements_of_accounts, project_stream_record
from billing_webhooks.observability import logger, metrics

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
touched: dict = {}  # the accounts this batch's records moved (one batch at a time per container)


def project(record: DynamoDBRecord) -> None:
    if record.event_name is DynamoDBRecordEventName.INSERT:  # a record's later updates are its alert's
        moved = project_stream_record(record.dynamodb.new_image, touched)
        metrics.add_metric(name="AccountAspectsMoved", unit=MetricUnit.Count, value=moved)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    touched.clear()
    response = process_partial_response(event=event, record_handler=project, processor=processor, context=context)
    entitlements_of_accounts(touched)  # then the entitlements of the portals linked to them
    return response
