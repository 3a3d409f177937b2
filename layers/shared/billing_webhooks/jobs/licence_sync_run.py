"""LicenceSyncRunFunction, on its schedule (LicenceSyncRate): every portal whose check is due (the
sparse index `licence-sync`), a bounded number at once, each taken with a conditional claim so
that overlapping runs never check one portal twice. A run takes no new portal once its time is
nearly up; the next run finds the rest still due. A licence the check moved reaches the portal's
entitlement through InstallationsTable's stream (jobs/installation_changes.py), its one path.
"""

from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import Any

from billing_webhooks import clock
from billing_webhooks.data import installations
from billing_webhooks.domain import licence_sync
from billing_webhooks.observability import logger
from billing_webhooks.settings import settings

CLAIM_SECONDS = 15 * 60  # a portal taken by a run that died is due again after this
# Time one portal's check may take: a refresh (given the OAuth server's 20 s) and app.info, twice, paced.
RESERVE_MS = 60_000


def _due(now: int) -> Iterator[dict[str, Any]]:
    for shard in range(installations.SYNC_SHARDS):
        start = None
        while True:
            page, start = installations.due(str(shard), now, start_key=start)
            yield from page
            if start is None:
                break


def _check(item: dict[str, Any], now: int) -> str:
    member_id = item["member_id"]
    if not installations.claim_check(member_id, int(item["next_check_at"]), now + CLAIM_SECONDS):
        return "taken by another run"
    try:
        outcome = licence_sync.sync_portal(member_id, datetime.fromtimestamp(now, UTC))["outcome"]
    except Exception as exc:  # one portal never stops the run: it is due again once its claim lapses
        logger.error("licence check failed", extra={"member_id": member_id, "error": exc.__class__.__name__})
        return "error"
    return outcome


def run_due(time_left_ms: Callable[[], int], *, reserve_ms: int = RESERVE_MS, now: int | None = None) -> dict[str, int]:
    """Check every portal due at `now` while time allows; how many ended how (outcomes by name)."""
    now = int(clock.epoch()) if now is None else now
    counts: Counter[str] = Counter()
    concurrency = max(1, int(settings().licence_sync_concurrency))
    in_flight: set[Future] = set()

    def collect(done: set[Future]) -> None:
        for future in done:
            counts[future.result()] += 1

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="licence-sync") as pool:
        for item in _due(now):
            if time_left_ms() < reserve_ms:
                counts["left for the next run"] += 1
                break
            if len(in_flight) >= concurrency:
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                collect(done)
            in_flight.add(pool.submit(_check, item, now))
        collect(wait(in_flight)[0])
    return dict(counts)
