"""A portal's installation and licence, as Bitrix24's lifecycle events move them.

ONAPPINSTALL writes the record once the portal confirmed the install, ONAPPUPDATE replaces the
token, ONAPPUNINSTALL marks it uninstalled, ONAPPPAYMENT refreshes the licence state. The
application token is kept only as its SHA-256. Every write is conditional on the event's `ts`
(data/installations.py), so an older event never overwrites what a newer one wrote.
"""

from datetime import datetime
from typing import Any

from billing_webhooks.data.installations import (
    INSTALLED,
    UNINSTALLED,
    put_installation,
    record_check,
    update_installation,
)
from billing_webhooks.domain import erasure, schedule
from billing_webhooks.domain.licence import (
    FROM_APP_INFO,
    FROM_PAYMENT,
    FROM_PAYMENT_REQUIRED,
    app_info_licence,
    confirms,
    licence_figures,
)
from billing_webhooks.models.base import from_utc_timestamp, utc_timestamp
from billing_webhooks.models.bitrix24 import (
    AppInfo,
    AppInstallEvent,
    AppPaymentEvent,
    AppUninstallEvent,
    AppUpdateEvent,
    Bitrix24Event,
    PortalConfirmation,
)
from billing_webhooks.wire.delivery import Delivery


def _event_ts(event: Bitrix24Event) -> int:
    return int(event.ts.timestamp())


def installation_record(
    event: AppInstallEvent,
    info: AppInfo,
    token_sha256: str | None,
    now: datetime,
    vouched: bool = True,
    vouch_pending: bool = False,
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
                **licence_figures(info.STATUS, info.PAYMENT_EXPIRED, info.DAYS, event.ts),
            }
        )
        # Its tokens are kept (domain/portal_tokens.py): the licence sync's next run checks it, and
        # schedules it from then on.
        record.update(sync_shard=schedule.sync_shard(event.auth.member_id), next_check_at=int(now.timestamp()))
    elif vouch_pending:  # the OAuth server did not answer: the licence sync vouches for it soon
        record.update(
            sync_shard=schedule.sync_shard(event.auth.member_id),
            next_check_at=int((now + schedule.FIRST_RETRY).timestamp()),
        )
    return {name: value for name, value in record.items() if value is not None}


def install(
    event: AppInstallEvent, confirmation: PortalConfirmation, token_sha256: str | None, now: datetime
) -> bool | None:
    """A new (or re-)installation, confirmed by the portal: the whole record is written afresh,
    vouched for by Bitrix24's OAuth server or not (data/installations.put_installation)."""
    return put_installation(
        installation_record(
            event, confirmation.info, token_sha256, now, confirmation.vouched, confirmation.vouch_pending
        )
    )


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
        # Bound to the domain the OAuth server named (the authenticator compared it with the
        # event's): never the one an unvouched claim on this member_id wrote.
        values.update(
            vouched=True,
            domain=event.auth.domain.lower(),
            sync_shard=schedule.sync_shard(event.auth.member_id),
            next_check_at=int(now.timestamp()),
        )
        gone = schedule.UNREACHABLE_ATTRIBUTES
    condition = "attribute_exists(member_id) AND #status = :installed AND #lifecycle_ts < :lifecycle_ts"
    return update_installation(
        event.auth.member_id, values, condition, condition_values={":installed": INSTALLED}, remove=gone
    )


def uninstall(event: AppUninstallEvent, delivery: Delivery, now: datetime) -> bool | None:
    """ONAPPUNINSTALL's effect: the portal removed the app; its events are refused from now on."""
    if delivery.sender is None:  # known only from the configured secret map: nothing to mark
        return None
    values = {"status": UNINSTALLED, "uninstalled_at": utc_timestamp(now), "lifecycle_ts": _event_ts(event)}
    applied = update_installation(
        event.auth.member_id,
        values,
        "attribute_exists(member_id) AND #lifecycle_ts < :lifecycle_ts",
        remove=schedule.SYNC_ATTRIBUTES,
    )
    if applied is not False:  # written now, or by this same uninstall before (a replay): erased once
        erasure.after_uninstall(event.auth.member_id, event.data.CLEAN == 1, _event_ts(event), now)
    return applied


def refresh_licence(event: AppPaymentEvent, delivery: Delivery, now: datetime) -> bool | None:
    """ONAPPPAYMENT's effect: its licence state onto the installation, unless a newer event set it."""
    if delivery.sender is None:
        return None
    if delivery.sender.get("vouched") is not True:  # an identity Bitrix24 never vouched for earns no licence
        return None
    licence = licence_figures(event.data.STATUS, event.data.PAYMENT_EXPIRED, event.data.DAYS, event.ts)
    if delivery.sender.get("sync_shard") is not None:  # on the sync's schedule: its next check follows the new end
        licence["next_check_at"] = schedule.next_check_at(
            {**delivery.sender, **licence, "licence_ts": _event_ts(event), "licence_source": FROM_PAYMENT},
            now,
            last_checked=from_utc_timestamp(checked) if (checked := delivery.sender.get("last_checked_at")) else now,
        )
    # Two payments of one `ts` (seconds) are ordered by their ids, so either order keeps the same.
    return _move_licence(event.auth.member_id, licence, _event_ts(event), event.notification_id, FROM_PAYMENT, now)


def licence_from_app_info(
    member_id: str,
    info: AppInfo,
    now: datetime,
    checked: dict[str, Any] | None = None,
    kept: dict[str, Any] | None = None,
) -> bool | None:
    """The licence sync's answer: app.info as of `now`, newest-wins like a payment; with the check's
    bookkeeping (`checked`) in the same write. An answer that only confirms the licence `kept`
    (the installation the check read) moves nothing: only the check is recorded."""
    if checked is not None and kept is not None and confirms(kept, app_info_licence(info, now)):
        record_check(member_id, checked, remove=schedule.UNREACHABLE_ATTRIBUTES)
        return None
    licence = {
        name: value
        for name, value in app_info_licence(info, now).items()
        if name not in ("licence_ts", "licence_source") and value is not None
    }
    # Two checks within one second: the later answer wins (the stamp's tie-break is its millisecond).
    tie_break = f"{FROM_APP_INFO}|{now.microsecond // 1000:03d}"
    return _move_licence(member_id, licence, int(now.timestamp()), tie_break, FROM_APP_INFO, now, checked)


def licence_unpaid(
    member_id: str, now: datetime, checked: dict[str, Any] | None = None, kept: dict[str, Any] | None = None
) -> bool | None:
    """Bitrix24 answered PAYMENT_REQUIRED: the licence is unpaid as of `now` (status kept as it was),
    or as of the first time it said so, when the installation `kept` says that already."""
    if checked is not None and kept is not None and kept.get("licence_source") == FROM_PAYMENT_REQUIRED:
        record_check(member_id, checked, remove=schedule.UNREACHABLE_ATTRIBUTES)
        return None
    ts = int(now.timestamp())
    return _move_licence(member_id, {}, ts, FROM_PAYMENT_REQUIRED, FROM_PAYMENT_REQUIRED, now, checked)


def _move_licence(
    member_id: str,
    licence: dict[str, Any],
    ts: int,
    tie_break: str,
    source: str,
    now: datetime,
    checked: dict[str, Any] | None = None,
) -> bool | None:
    """The licence moved if the installation holds none newer. A licence check's bookkeeping
    (`checked`: its outcome, its next time) rides in the same write while the portal is installed:
    one write a check, not two; a licence refused as stale still records the check."""
    values = {
        **licence,
        "licence_ts": ts,
        "licence_stamp": f"{ts:012d}|{tie_break}",
        "licence_source": source,
        "licence_updated_at": utc_timestamp(now),
    }
    gone = tuple(
        name
        for name in ("days", "paid_until", "licence_ends_at")
        if name not in licence and source != FROM_PAYMENT_REQUIRED
    )
    condition = (
        "attribute_exists(member_id) AND (attribute_not_exists(#licence_ts) OR #licence_ts < :licence_ts"
        " OR (#licence_ts = :licence_ts AND (attribute_not_exists(#licence_stamp)"
        " OR #licence_stamp < :licence_stamp)))"
    )
    if checked is None:
        return update_installation(member_id, values, condition, remove=gone)
    moved = update_installation(
        member_id,
        {**values, **checked},
        f"{condition} AND #status = :installed",
        condition_values={":installed": INSTALLED},
        remove=gone + schedule.UNREACHABLE_ATTRIBUTES,
    )
    if moved is not True:  # stale, or no longer installed: the check is recorded all the same (if installed)
        record_check(member_id, checked, remove=schedule.UNREACHABLE_ATTRIBUTES)
    return moved
