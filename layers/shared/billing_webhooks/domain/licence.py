"""The licence rule: what a portal's Bitrix24 licence figures say, and where the licence stands at
any instant. Bitrix24 sends no event when a paid period or a trial runs out, so the state is
derived when read, from the figures the newest word (app.info, ONAPPPAYMENT, PAYMENT_REQUIRED)
left on the installation. Pure functions; nothing here reads or writes a table.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from billing_webhooks.models.base import utc_timestamp
from billing_webhooks.models.bitrix24 import AppInfo, Days

# Where a licence's figures came from (`licence_source`): an install's app.info, a payment event,
# the licence sync's app.info, or Bitrix24 answering PAYMENT_REQUIRED (the trusted "unpaid").
FROM_APP_INFO, FROM_PAYMENT, FROM_PAYMENT_REQUIRED = "app.info", "ONAPPPAYMENT", "PAYMENT_REQUIRED"


def licence_figures(status: Any, payment_expired: Any, days: Days, as_of: datetime) -> dict[str, Any]:
    """Licence state as of an event; paid-until is the day DAYS runs out, counted from the event.
    `licence_ends_at` is the instant it runs out (or ran out: DAYS 0 or below counts back from the
    answer, and PAYMENT_EXPIRED Y says it has ended by then at the latest)."""
    licence: dict[str, Any] = {
        name: str(value) for name, value in (("licence_status", status), ("payment_expired", payment_expired)) if value
    }
    ends: datetime | None = None
    if days is not None:
        licence["days"] = days
        try:
            ends = as_of + timedelta(days=days)
            licence["paid_until"] = ends.date().isoformat()
        except OverflowError:  # DAYS past year 9999 (or before year 1): kept as sent, no date for it
            ends = None
    if str(payment_expired) == "Y":
        ends = min(ends, as_of) if ends is not None else as_of
    if ends is not None:
        licence["licence_ends_at"] = int(ends.timestamp())
    return licence


DAYS_PRECISION = timedelta(days=1)  # DAYS is whole days: two answers a day apart may differ by one


def confirms(kept: dict[str, Any], figures: dict[str, Any]) -> bool:
    """Whether a licence answer only confirms what the installation keeps: the same STATUS and
    PAYMENT_EXPIRED, and the same end within what whole DAYS can tell apart. Such an answer
    moves nothing, so the end stays the instant first known (a grace counted from it ends)."""
    if kept.get("licence_source") == FROM_PAYMENT_REQUIRED or kept.get("licence_ts") is None:
        return False
    same = all(kept.get(name) == figures.get(name) for name in ("licence_status", "payment_expired"))
    before, after = kept.get("licence_ends_at"), figures.get("licence_ends_at")
    if before is None or after is None:
        return same and before is None and after is None
    return same and abs(int(after) - int(before)) < DAYS_PRECISION.total_seconds()


def app_info_licence(info: AppInfo, now: datetime) -> dict[str, Any]:
    """The licence app.info reports at `now`, as the installation keeps it."""
    return {
        "licence": info.LICENSE,
        "licence_ts": int(now.timestamp()),
        "licence_source": FROM_APP_INFO,
        **licence_figures(info.STATUS, info.PAYMENT_EXPIRED, info.DAYS, now),
    }


# STATUS values whose licence runs out (app.info): T trial; P paid, S subscription, D demo. F free
# and L local never do. Any other is named, never read as a grant.
TRIAL, RUNS_OUT, NEVER_RUNS_OUT = "T", frozenset({"P", "S", "D"}), frozenset({"F", "L"})


def licence_state(installation: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Where the licence stands now, derived when read: Bitrix24 sends no event when a paid period
    or a trial runs out. Expired (or trial_ended) from the instant it ran out (`licence_ends_at`:
    DAYS counted from the answer that said it, PAYMENT_EXPIRED Y at the latest), not from the
    instant we heard of it, so a grace counted from it ends however often it is confirmed."""
    status, licence_ts = installation.get("licence_status"), installation.get("licence_ts")
    if installation.get("licence_source") == FROM_PAYMENT_REQUIRED and licence_ts is not None:
        return {"state": "unpaid", "since": utc_timestamp(datetime.fromtimestamp(int(licence_ts), UTC)), "until": None}
    if status is None or licence_ts is None:
        return {"state": "unknown", "since": None, "until": None}
    as_of = datetime.fromtimestamp(int(licence_ts), UTC)
    kept_end, days = installation.get("licence_ends_at"), installation.get("days")
    try:
        if kept_end is not None:
            ends: datetime | None = datetime.fromtimestamp(int(kept_end), UTC)
        else:  # kept before licence_ends_at: counted from the answer that said it
            ends = as_of + timedelta(days=int(days)) if days is not None else None
    except (OverflowError, ValueError, OSError):
        ends = None  # past year 9999: not in our lifetime
    if status in NEVER_RUNS_OUT:
        return {"state": "active", "since": utc_timestamp(as_of), "until": None}
    if status != TRIAL and status not in RUNS_OUT:
        return {"state": f"unknown status {str(status)[:32]}", "since": utc_timestamp(as_of), "until": None}
    if installation.get("payment_expired") == "Y":  # ended by the answer's instant, at the latest
        ended: datetime | None = min(ends, as_of) if ends is not None else as_of
    else:
        ended = ends if ends is not None and ends <= now else None
    if ended is not None:
        return {"state": "trial_ended" if status == TRIAL else "expired", "since": utc_timestamp(ended), "until": None}
    return {
        "state": "trial" if status == TRIAL else "active",
        "since": utc_timestamp(as_of),
        "until": utc_timestamp(ends) if ends is not None else None,
    }
