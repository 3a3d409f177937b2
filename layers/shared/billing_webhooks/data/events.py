"""BillingEventsBus: what the vendor's other systems are told (docs/events.md). PutEvents, up to
10 entries a call (its limit); entries a call refused are sent again, a few times, before the
whole is given up as ServiceUnavailable (the stream then delivers the change again)."""

import json
from typing import Any

from billing_webhooks.data import aws
from billing_webhooks.errors import ServiceUnavailable
from billing_webhooks.settings import settings

SOURCE = "billing-webhooks"
PER_CALL = 10  # PutEvents' limit
ATTEMPTS = 3


def _entry(detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "Source": SOURCE,
        "DetailType": detail_type,
        "Detail": json.dumps(detail, default=str),
        "EventBusName": settings().billing_events_bus_name,
    }


def publish(events: list[tuple[str, dict[str, Any]]]) -> int:
    """Put every (detail-type, detail) on the bus, in order; how many. ServiceUnavailable when
    some could not be put: those already put stay put (each event's `id` lets a consumer drop
    the copy a retry sends)."""
    entries = [_entry(detail_type, detail) for detail_type, detail in events]
    for start in range(0, len(entries), PER_CALL):
        waiting = entries[start : start + PER_CALL]
        error = "no attempt"
        for _ in range(ATTEMPTS):
            try:
                answer = aws.client("events").put_events(Entries=waiting)
            except Exception as exc:  # botocore's errors, or an answer we cannot read
                error = exc.__class__.__name__
                continue
            results = answer.get("Entries") or []
            refused = [entry for entry, result in zip(waiting, results, strict=False) if "EventId" not in result]
            refused += waiting[len(results) :]  # an answer without an entry's result: not known to be put
            if not refused:
                break
            waiting, error = refused, str(results[0].get("ErrorCode") if results else "no entries")[:64]
        else:
            raise ServiceUnavailable(f"The event bus cannot take the events right now ({error}).")
    return len(entries)
