"""EntitlementEventsFunction, on EntitlementsTable's stream (old and new image): each change of a
portal's entitlement that told something (its `sequence` moved) put on BillingEventsBus, in the
order of the stream. The events are a pure function of the two images
(domain/entitlement_events.py), so an event exists as soon as its change is written, cannot be
overwritten by the next change, and is the same on every delivery of its record.

Order is the point: a portal's records come in the order they were written, and a failure stops
the batch there. Powertools' BatchProcessor goes on past a failed record, which would tell a
later change before an earlier one; so the loop is ours: the failed record and every record after
it are reported, and Lambda delivers them again from that record (ReportBatchItemFailures).
"""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from billing_webhooks.data import events, toolkit
from billing_webhooks.domain.entitlement_events import changed_events
from billing_webhooks.observability import logger, metrics


def told(record: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The events of one stream record (Lambda's form): none unless its sequence moved."""
    change = record.get("dynamodb") or {}
    new = toolkit.from_item(change.get("NewImage") or {})
    old = toolkit.from_item(change.get("OldImage") or {})
    sequence = int(new.get("sequence") or 0)
    if "entitlement" not in new or sequence <= int(old.get("sequence") or 0):
        return []
    return [
        (event["detail_type"], {name: value for name, value in event.items() if name != "detail_type"})
        for event in changed_events(new["entitlement"], sequence, old.get("entitlement"))
    ]


def publish_in_order(stream_event: dict[str, Any]) -> dict[str, Any]:
    """Lambda's partial batch response: every record from the first that could not be published."""
    records = stream_event.get("Records") or []
    for index, record in enumerate(records):
        try:
            published = events.publish(told(record))
        except Exception as exc:  # an outage, or a record we cannot read: Lambda retries from here
            logger.error(
                "events not published", extra={"error": exc.__class__.__name__, "records_left": len(records) - index}
            )
            return {
                "batchItemFailures": [
                    {"itemIdentifier": later["dynamodb"]["SequenceNumber"]} for later in records[index:]
                ]
            }
        if published:  # the dashboard's events line
            metrics.add_metric(name="EventsPublished", unit=MetricUnit.Count, value=published)
    return {"batchItemFailures": []}
