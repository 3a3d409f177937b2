"""When the licence sync asks a portal's app.info next, and the bookkeeping that puts a portal on
(and takes it off) the sparse `licence-sync` index. Pure, but for the settings it reads.
"""

import hashlib
from datetime import datetime, timedelta
from typing import Any

from billing_webhooks.data.installations import SYNC_SHARDS
from billing_webhooks.domain.licence import licence_state
from billing_webhooks.models.base import from_utc_timestamp
from billing_webhooks.settings import settings

# The licence sync's bookkeeping on an installation (the sparse index `licence-sync` holds the
# portals that carry them): when it is next due, and how its last checks went.
SYNC_ATTRIBUTES = ("sync_shard", "next_check_at")


UNREACHABLE_ATTRIBUTES = ("unreachable_since", "unreachable_because")


# After a check that failed: again in 5 minutes, doubling, at most this long (a refresh failed
# before it rotated anything; an access token a refresh won is still good for its hour).
FIRST_RETRY, RETRY_CEILING = timedelta(minutes=5), timedelta(hours=6)
AFTER_END = timedelta(minutes=1)  # a licence or trial is checked this long after its end
# The last check in a grace, to find a renewal whose ONAPPPAYMENT never came before the portal is
# cut off: due this long before the grace ends, so a run (LicenceSyncRate) makes it in time.
BEFORE_GRACE_ENDS = timedelta(hours=2)
ENDED = frozenset({"expired", "trial_ended", "unpaid"})
# A keep-alive falling this little before a licence's end is put off to the end's check: one
# refresh, not two a few days apart (the refresh token lives 180 days).
KEEP_ALIVE_SLACK = timedelta(days=7)
# At most this many refreshes in any 30 days: Bitrix24 calls more excessive. Of an end's two
# checks the grace's last one must come (a payment in the grace whose ONAPPPAYMENT was lost would
# be cut off); the one just after the end gives way when the portal was refreshed in the 30 days
# before the grace's last check: a renewal whose event was lost then shows in grace, still entitled.
REFRESHES_PER_WINDOW, REFRESH_WINDOW = 2, timedelta(days=30)
# app.info's DAYS are whole days, so an end is known to the day: the grace's last check, made from
# the end known before it, may learn an end up to a day later. It was the last check all the same.
END_RESOLUTION = timedelta(days=1)


def sync_shard(member_id: str) -> str:
    return str(hashlib.sha256(member_id.encode()).digest()[0] % SYNC_SHARDS)


def next_check_at(
    installation: dict[str, Any], now: datetime, failures: int = 0, *, last_checked: datetime | None = None
) -> int:
    """When the licence sync asks app.info next (epoch seconds). Each check needs an access token,
    and a kept one has most likely expired (they live an hour): a check is a refresh, and Bitrix24
    calls a refresh every day excessive. So checks go only where the answer can change without an
    event: a minute after a licence's or trial's end (a renewal whose ONAPPPAYMENT never came), once
    near its grace's end, and a keep-alive every LICENCE_SYNC_HOURS (30 days), well inside the
    refresh token's 180 days, which also finds an uninstall whose event was lost. After a failure,
    sooner, backing off from 5 minutes up to 6 hours. The keep-alive counts from `last_checked`
    (a licence moved by a payment, not by a check), else from now (a check). At most 2 refreshes
    in any 30 days (REFRESHES_PER_WINDOW), counting the last check's."""
    keep_alive = timedelta(hours=settings().licence_sync_hours)
    if failures:
        return int((now + min(FIRST_RETRY * 2 ** min(failures - 1, 20), RETRY_CEILING, keep_alive)).timestamp())
    due = max((last_checked or now) + keep_alive, now)
    state = licence_state(installation, now)
    grace = timedelta(days=settings().entitlement_grace_days)
    if state.get("until"):
        ends = from_utc_timestamp(state["until"])
        after_end = max(ends + AFTER_END, now + FIRST_RETRY)
        last_in_grace = ends + grace - BEFORE_GRACE_ENDS
        spent = 1 if (last_checked or now) > last_in_grace - REFRESH_WINDOW else 0  # the last check's
        if spent + 2 > REFRESHES_PER_WINDOW:  # with the end's check and the grace's last one
            after_end = max(last_in_grace, now + FIRST_RETRY)
        due = after_end if after_end <= due + KEEP_ALIVE_SLACK else due
    elif state["state"] in ENDED and state.get("since"):
        last_in_grace = from_utc_timestamp(state["since"]) + grace - BEFORE_GRACE_ENDS
        if last_in_grace > now and (last_checked or now) < last_in_grace - END_RESOLUTION:
            due = min(due, last_in_grace)
    return int(due.timestamp())
