"""AlertRedriveFunction: publish alerts left pending past their lease (a failed publish whose
sender gave up, a claimant that died). Found through the sparse `pending-alerts` index, never a scan."""

from datetime import datetime

from billing_webhooks import clock
from billing_webhooks.data import notifications
from billing_webhooks.domain import alerts
from billing_webhooks.errors import ServiceUnavailable


def redrive(now: datetime | None = None) -> dict[str, int]:
    now = now or clock.now()
    published = failed = 0
    for record in notifications.expired_pending_alerts(now):
        claim = alerts.claim(record, now)
        if not claim:
            continue
        try:
            alerts.publish(record, claim)
            published += 1
        except ServiceUnavailable:
            failed += 1
    return {"published": published, "failed": failed}
