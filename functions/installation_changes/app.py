"""InstallationChangesFunction, on InstallationsTable's stream: the entitlement of each portal whose
installation moved what the decision reads (jobs/installation_changes.py). Powertools reports each
failed record, so Lambda delivers only those again."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from billing_webhooks.jobs.installation_changes import installation_written
from billing_webhooks.observability import logger, metrics

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def decide_again(record: DynamoDBRecord) -> None:
    if installation_written(record.raw_event):
        metrics.add_metric(name="EntitlementsChanged", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=decide_again, processor=processor, context=context)
