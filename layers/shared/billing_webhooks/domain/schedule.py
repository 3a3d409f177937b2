"""When the licence sync asks a portal's app.info next, and the bookkeeping that puts a portal on
(and takes it off) the sparse `licence-sync` index. Pure, but for the settings it reads.
"""

import hashlib
from datetime import datetime, timedelta
from typing import Any

from billing_webhooks.data.installations import SYNC_SHARDS
from billing_webhooks.domain.licence import licence_state
from billing_webhooks.settings import settings

# The licence sync's bookkeeping on an installation (the sparse index `licence-sync` holds the
# portals that carry them): when it is next due, and how its last checks went.
SYNC_ATTRIBUTES = ("sync_shard", "next_check_at")


UNREACHABLE_ATTRIBUTES = ("unreachable_since", "unreachable_because")


NEAR_END = timedelta(days=3)  # a licence this close to its end is checked every NEAR_END_EVERY


NEAR_END_EVERY = timedelta(hours=6)


FIRST_RETRY = timedelta(minutes=5)


def sync_shard(member_id: str) -> str:
    return str(hashlib.sha256(member_id.encode()).digest()[0] % SYNC_SHARDS)


def next_check_at(installation: dict[str, Any], now: datetime, failures: int = 0) -> int:
    """When the licence sync asks app.info next (epoch seconds): within LICENCE_SYNC_HOURS always,
    which keeps the refresh token alive well inside Bitrix24's 28 days; every 6 hours in a
    licence's last 3 days, and just after the instant it ends; after a failure, sooner, backing
    off from 5 minutes (doubling up to the interval)."""
    interval = timedelta(hours=settings().licence_sync_hours)
    if failures:
        return int((now + min(FIRST_RETRY * 2 ** min(failures - 1, 20), interval)).timestamp())
    due = now + interval
    until = licence_state(installation, now).get("until")
    if until:
        ends = datetime.fromisoformat(until.replace("Z", "+00:00"))
        if ends - now <= NEAR_END:
            due = min(due, now + NEAR_END_EVERY, max(ends + timedelta(minutes=1), now + FIRST_RETRY))
    return int(due.timestamp())
