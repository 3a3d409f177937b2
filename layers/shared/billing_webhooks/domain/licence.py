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
    """Licence state as of an event; paid-until is the day DAYS runs out, counted from the event."""
    licence: dict[str, Any] = {
        name: str(value) for name, value in (("licence_status", status), ("payment_expired", payment_expired)) if value
    }
    if days is not None:
        licence["days"] = days
        try:
            licence["paid_until"] = (as_of + timedelta(days=days)).date().isoformat()
        except OverflowError:  # DAYS past year 9999 (or before year 1): kept as sent, no date for it
            pass
    return licence


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
    or a trial runs out. Expired (or trial_ended) from the instant it ran out: PAYMENT_EXPIRED Y
    (as of the event that said so), DAYS <= 0, or the day DAYS counted to is behind us."""
    status, licence_ts = installation.get("licence_status"), installation.get("licence_ts")
    if installation.get("licence_source") == FROM_PAYMENT_REQUIRED and licence_ts is not None:
        return {"state": "unpaid", "since": utc_timestamp(datetime.fromtimestamp(int(licence_ts), UTC)), "until": None}
    if status is None or licence_ts is None:
        return {"state": "unknown", "since": None, "until": None}
    as_of = datetime.fromtimestamp(int(licence_ts), UTC)
    days = installation.get("days")
    try:
        ends = as_of + timedelta(days=int(days)) if days is not None else None
    except (OverflowError, ValueError):
        ends = None  # past year 9999: not in our lifetime
    if status in NEVER_RUNS_OUT:
        return {"state": "active", "since": utc_timestamp(as_of), "until": None}
    if status != TRIAL and status not in RUNS_OUT:
        return {"state": f"unknown status {str(status)[:32]}", "since": utc_timestamp(as_of), "until": None}
    ended = as_of if installation.get("payment_expired") == "Y" else ends if ends is not None and ends <= now else None
    if ended is not None:
        return {"state": "trial_ended" if status == TRIAL else "expired", "since": utc_timestamp(ended), "until": None}
    return {
        "state": "trial" if status == TRIAL else "active",
        "since": utc_timestamp(as_of),
        "until": utc_timestamp(ends) if ends is not None else None,
    }
