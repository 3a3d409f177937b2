"""BillingEventsBus: what the vendor's other systems are told (docs/events.md). PutEvents, one
event at a time; a failure raises ServiceUnavailable and the caller's outbox keeps the event."""

import json
from typing import Any

from billing_webhooks.data import aws
from billing_webhooks.errors import ServiceUnavailable
from billing_webhooks.settings import settings

SOURCE = "billing-webhooks"


def publish(detail_type: str, detail: dict[str, Any]) -> str:
    """Publish one event; its EventBridge id."""
    try:
        answer = aws.client("events").put_events(
            Entries=[
                {
                    "Source": SOURCE,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail, default=str),
                    "EventBusName": settings().billing_events_bus_name,
                }
            ]
        )
        [entry] = answer["Entries"]
    except Exception as exc:  # botocore's errors, or an answer without its entry
        raise ServiceUnavailable(f"The event bus cannot be reached right now ({exc.__class__.__name__}).") from None
    if "EventId" not in entry:
        raise ServiceUnavailable(f"The event bus refused the event ({str(entry.get('ErrorCode'))[:64]}).")
    return entry["EventId"]
