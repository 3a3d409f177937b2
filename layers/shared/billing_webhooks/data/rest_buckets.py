"""RestBucketsTable: each portal's REST request bucket, shared by every container that calls it.

Bitrix24 drains each portal's REST requests through a leaky bucket: 2 a second, a burst of 50
(over it: 503 QUERY_LIMIT_EXCEEDED). The in-container pacer (domain/licence_sync.py) holds it
inside one container only; this holds it across all of them. Kept as the generic cell rate
algorithm: one number per portal, `ready_at`, the instant the bucket is empty again. Taking a
place moves it on by half a second, from now if it is in the past, and only while it stays within
the burst (25 s ahead): one conditional UpdateItem, two when the bucket is in use. An item is gone
(TTL) once its bucket has drained.
"""

from billing_webhooks.data import toolkit
from billing_webhooks.settings import settings

LEAK_PER_SECOND, BURST = 2, 50
# Places we take of the 50: a few are left for the network's jitter (a request taken after
# another may reach Bitrix24 a little sooner) and for calls made outside this stack.
PLACES = BURST - 5
STEP_MS = 1000 // LEAK_PER_SECOND
AHEAD_MS = PLACES * STEP_MS  # how far ahead of now the bucket may be filled
UNAVAILABLE = "The portal's request bucket cannot be reached right now; retry later."


def enabled() -> bool:
    return bool(settings().rest_buckets_table_name)


def take(portal: str, now: float) -> float:
    """A place in the portal's bucket at `now` (epoch seconds): 0 when taken, else the seconds to
    wait before one frees. Instants are kept in whole milliseconds."""
    table, key, now_ms = settings().rest_buckets_table_name, {"portal": portal}, int(now * 1000)
    expires_at = (now_ms + AHEAD_MS) // 1000 + 60
    idle, _ = toolkit.update(
        table,
        key,
        UNAVAILABLE,
        values={"ready_at_ms": now_ms + STEP_MS, "expires_at": expires_at},
        condition="attribute_not_exists(#ready_at_ms) OR #ready_at_ms <= :now",
        condition_values={":now": now_ms},
    )
    if idle:
        return 0.0
    last = now_ms + AHEAD_MS - STEP_MS
    taken, held = toolkit.update(
        table,
        key,
        UNAVAILABLE,
        expression="SET #ready_at_ms = #ready_at_ms + :step, #expires_at = :expires_at",
        condition="#ready_at_ms > :now AND #ready_at_ms <= :last",
        condition_values={":now": now_ms, ":step": STEP_MS, ":last": last, ":expires_at": expires_at},
        return_old=True,
    )
    if taken:
        return 0.0
    ready_at = int(held.get("ready_at_ms") or now_ms)
    return max(STEP_MS, ready_at - last) / 1000
