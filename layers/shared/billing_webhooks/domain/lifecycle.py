"""A portal's installation and licence, as Bitrix24's lifecycle events move them.

ONAPPINSTALL writes the record once the portal confirmed the install, ONAPPUPDATE replaces the
token, ONAPPUNINSTALL marks it uninstalled, ONAPPPAYMENT refreshes the licence state. The
application token is kept only as its SHA-256. Every write is conditional on the event's `ts`
(data/installations.py), so an older event never overwrites what a newer one wrote.
"""

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from billing_webhooks.data.installations import (
    INSTALLED,
    SYNC_SHARDS,
    UNINSTALLED,
    put_installation,
    update_installation,
)
from billing_webhooks.models.base import utc_timestamp
from billing_webhooks.models.bitrix24 import (
    AppInfo,
    AppInstallEvent,
    AppPaymentEvent,
    AppUninstallEvent,
    AppUpdateEvent,
    Bitrix24Event,
    Days,
    PortalConfirmation,
)
from billing_webhooks.settings import settings
from billing_webhooks.wire.delivery import Delivery

# Where a licence's figures came from (`licence_source`): an install's app.info, a payment event,
# the licence sync's app.info, or Bitrix24 answering PAYMENT_REQUIRED (the trusted "unpaid").
FROM_APP_INFO, FROM_PAYMENT, FROM_PAYMENT_REQUIRED = "app.info", "ONAPPPAYMENT", "PAYMENT_REQUIRED"


def _event_ts(event: Bitrix24Event) -> int:
    return int(event.ts.timestamp())


def _licence(status: Any, payment_expired: Any, days: Days, as_of: datetime) -> dict[str, Any]:
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


def installation_record(
    event: AppInstallEvent, info: AppInfo, token_sha256: str | None, now: datetime, vouched: bool = True
) -> dict[str, Any]:
    ts = _event_ts(event)
    record = {
        "vouched": vouched,
        "member_id": event.auth.member_id,
        "domain": event.auth.domain.lower(),
        "client_endpoint": event.auth.client_endpoint,
        "server_endpoint": event.auth.server_endpoint,
        "status": INSTALLED,
        "app_version": event.data.VERSION,
        "language_id": event.data.LANGUAGE_ID or info.LANGUAGE_ID,
        "application_token_sha256": token_sha256,
        "installed_at": utc_timestamp(now),
        "updated_at": utc_timestamp(now),
        "lifecycle_ts": ts,
    }
    if vouched:  # an identity Bitrix24 never vouched for earns no licence, not even app.info's
        record.update(
            {
                "licence": info.LICENSE,
                "licence_ts": ts,
                "licence_source": FROM_APP_INFO,
                **_licence(info.STATUS, info.PAYMENT_EXPIRED, info.DAYS, event.ts),
            }
        )
        # Its tokens are kept (domain/portal_tokens.py): the licence sync's next run checks it, and
        # schedules it from then on.
        record.update(sync_shard=sync_shard(event.auth.member_id), next_check_at=int(now.timestamp()))
    return {name: value for name, value in record.items() if value is not None}


def install(
    event: AppInstallEvent, confirmation: PortalConfirmation, token_sha256: str | None, now: datetime
) -> bool | None:
    """A new (or re-)installation, confirmed by the portal: the whole record is written afresh,
    vouched for by Bitrix24's OAuth server or not (data/installations.put_installation)."""
    return put_installation(installation_record(event, confirmation.info, token_sha256, now, confirmation.vouched))


def update(
    event: AppUpdateEvent, confirmation: PortalConfirmation, token_sha256: str | None, now: datetime
) -> bool | None:
    """A new app version on an installed portal: the new token replaces the old one (vouched for,
    if the portal is bound: the authenticator saw to it)."""
    values = {
        "app_version": event.data.VERSION,
        "application_token_sha256": token_sha256,
        "client_endpoint": event.auth.client_endpoint,
        "server_endpoint": event.auth.server_endpoint,
        "updated_at": utc_timestamp(now),
        "lifecycle_ts": _event_ts(event),
    }
    if event.data.LANGUAGE_ID:
        values["language_id"] = event.data.LANGUAGE_ID
    gone: tuple[str, ...] = ()
    if confirmation.vouched:  # its tokens may be new (a reinstall's): due for a check now, reachable again
        values.update(vouched=True, sync_shard=sync_shard(event.auth.member_id), next_check_at=int(now.timestamp()))
        gone = UNREACHABLE_ATTRIBUTES
    condition = "attribute_exists(member_id) AND #status = :installed AND #lifecycle_ts < :lifecycle_ts"
    return update_installation(
        event.auth.member_id, values, condition, condition_values={":installed": INSTALLED}, remove=gone
    )


def uninstall(event: AppUninstallEvent, delivery: Delivery, now: datetime) -> bool | None:
    """ONAPPUNINSTALL's effect: the portal removed the app; its events are refused from now on."""
    if delivery.sender is None:  # known only from the configured secret map: nothing to mark
        return None
    values = {"status": UNINSTALLED, "uninstalled_at": utc_timestamp(now), "lifecycle_ts": _event_ts(event)}
    return update_installation(
        event.auth.member_id,
        values,
        "attribute_exists(member_id) AND #lifecycle_ts < :lifecycle_ts",
        remove=SYNC_ATTRIBUTES,
    )


def refresh_licence(event: AppPaymentEvent, delivery: Delivery, now: datetime) -> bool | None:
    """ONAPPPAYMENT's effect: its licence state onto the installation, unless a newer event set it."""
    if delivery.sender is None:
        return None
    if delivery.sender.get("vouched") is not True:  # an identity Bitrix24 never vouched for earns no licence
        return None
    licence = _licence(event.data.STATUS, event.data.PAYMENT_EXPIRED, event.data.DAYS, event.ts)
    # Two payments of one `ts` (seconds) are ordered by their ids, so either order keeps the same.
    return _move_licence(event.auth.member_id, licence, _event_ts(event), event.notification_id, FROM_PAYMENT, now)


def app_info_licence(info: AppInfo, now: datetime) -> dict[str, Any]:
    """The licence app.info reports at `now`, as the installation keeps it."""
    return {
        "licence": info.LICENSE,
        "licence_ts": int(now.timestamp()),
        "licence_source": FROM_APP_INFO,
        **_licence(info.STATUS, info.PAYMENT_EXPIRED, info.DAYS, now),
    }


def licence_from_app_info(member_id: str, info: AppInfo, now: datetime) -> bool | None:
    """The licence sync's answer: app.info as of `now`, newest-wins like a payment."""
    licence = {
        name: value
        for name, value in app_info_licence(info, now).items()
        if name not in ("licence_ts", "licence_source") and value is not None
    }
    # Two checks within one second: the later answer wins (the stamp's tie-break is its millisecond).
    tie_break = f"{FROM_APP_INFO}|{now.microsecond // 1000:03d}"
    return _move_licence(member_id, licence, int(now.timestamp()), tie_break, FROM_APP_INFO, now)


def licence_unpaid(member_id: str, now: datetime) -> bool | None:
    """Bitrix24 answered PAYMENT_REQUIRED: the licence is unpaid as of `now` (status kept as it was)."""
    return _move_licence(member_id, {}, int(now.timestamp()), FROM_PAYMENT_REQUIRED, FROM_PAYMENT_REQUIRED, now)


def _move_licence(
    member_id: str, licence: dict[str, Any], ts: int, tie_break: str, source: str, now: datetime
) -> bool | None:
    values = {
        **licence,
        "licence_ts": ts,
        "licence_stamp": f"{ts:012d}|{tie_break}",
        "licence_source": source,
        "licence_updated_at": utc_timestamp(now),
    }
    gone = tuple(name for name in ("days", "paid_until") if name not in licence and source != FROM_PAYMENT_REQUIRED)
    condition = (
        "attribute_exists(member_id) AND (attribute_not_exists(#licence_ts) OR #licence_ts < :licence_ts"
        " OR (#licence_ts = :licence_ts AND (attribute_not_exists(#licence_stamp)"
        " OR #licence_stamp < :licence_stamp)))"
    )
    return update_installation(member_id, values, condition, remove=gone)


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


def portal_view(installation: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """A portal's installation and licence as the read API answers it: never a token or its
    digest. The licence figures come from app.info when the portal was installed, or from the
    newest ONAPPPAYMENT since, as of that event's `ts`; its `state` is derived at `now`."""
    licence_ts = installation.get("licence_ts")
    return {
        "member_id": installation["member_id"],
        "domain": installation.get("domain"),
        "status": installation.get("status"),
        "app_version": installation.get("app_version"),
        "language_id": installation.get("language_id"),
        "vouched": installation.get("vouched") is True,
        "installed_at": installation.get("installed_at"),
        "uninstalled_at": installation.get("uninstalled_at"),
        "licence": {
            "status": installation.get("licence_status"),
            "payment_expired": installation.get("payment_expired"),
            "days": installation.get("days"),
            "paid_until": installation.get("paid_until"),
            "licence": installation.get("licence"),
            # Records from before `licence_source`: a payment wrote licence_updated_at, an install did not.
            "source": installation.get("licence_source")
            or (FROM_PAYMENT if "licence_updated_at" in installation else FROM_APP_INFO),
            "as_of": utc_timestamp(datetime.fromtimestamp(int(licence_ts), UTC)) if licence_ts is not None else None,
            **licence_state(installation, now or datetime.now(UTC)),
        },
        "sync": {
            "reachable": installation.get("unreachable_since") is None,
            "unreachable_since": installation.get("unreachable_since"),
            "unreachable_because": installation.get("unreachable_because"),
            "last_checked_at": installation.get("last_checked_at"),
            "last_outcome": installation.get("last_check_outcome"),
            "failures": int(installation.get("check_failures") or 0),
            "next_check_at": (
                utc_timestamp(datetime.fromtimestamp(int(installation["next_check_at"]), UTC))
                if installation.get("next_check_at") is not None
                else None
            ),
        },
    }
