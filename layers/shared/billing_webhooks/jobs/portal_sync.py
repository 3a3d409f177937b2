"""PortalSyncFunction, invoked on demand (`billing-webhooks portals sync <member_id>`): these
portals' app.info asked now, due or not, one after another. Its role alone besides the scheduled
run's may open the portals' tokens."""

from typing import Any

from billing_webhooks import clock
from billing_webhooks.domain import licence_sync


def sync_now(member_ids: list[str]) -> list[dict[str, Any]]:
    """On demand (`billing-webhooks portals sync`): these portals, due or not, one after another."""
    now, outcomes = clock.now(), []
    for member_id in map(str, member_ids):
        outcomes.append(licence_sync.sync_portal(member_id, now))
    return outcomes
