"""EntitlementDeadlinesFunction, every minute: entitlements whose deadline has come (a trial's end,
a grace period's, an invoice's blocking day) decided again, so that their change is told at that
instant, not at the next delivery."""

from collections import Counter
from datetime import UTC, datetime

from billing_webhooks import clock
from billing_webhooks.data import entitlements
from billing_webhooks.domain import entitlement_updates
from billing_webhooks.observability import logger


def run_deadlines(now: int | None = None) -> dict[str, int]:
    """Entitlements whose deadline has come (a trial's end, a grace period's, an invoice's blocking
    day) decided again now, so their change is published at that instant, not at the next
    delivery. A deadline that moves nothing is cleared by the write of the new `changes_at`."""
    now = int(clock.epoch()) if now is None else now
    counts: Counter[str] = Counter()
    for shard in range(entitlements.SHARDS):
        for member_id in entitlements.due(shard, now):
            try:
                changed = entitlement_updates.recompute(member_id, datetime.fromtimestamp(now, UTC))[1]
            except Exception as exc:  # the next minute's run tries again
                logger.error(
                    "entitlement not recomputed", extra={"member_id": member_id, "error": exc.__class__.__name__}
                )
                changed = None
            counts["changed" if changed else "error" if changed is None else "unchanged"] += 1
    return dict(counts)
