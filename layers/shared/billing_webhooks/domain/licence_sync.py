"""The licence sync of one portal: Bitrix24 sends no event when a paid period or a trial runs out,
and its docs make the OAuth server and `app.info` the trusted source of payment status. So each
installed portal whose tokens we keep is asked `app.info` on a schedule (jobs/licence_sync_run.py)
or on demand (`billing-webhooks portals sync`), and its answer moves the licence with the same
newest-wins rule as ONAPPPAYMENT (domain/lifecycle.py), `source` app.info.

Bitrix24's answers by name: `expired_token` from the portal: refresh once and ask again;
`invalid_grant` from the OAuth server: the portal is unreachable until a reinstall (counted,
alarmed, shown); `PAYMENT_REQUIRED`: the licence is unpaid as of now. Any other failure: tried
again sooner, backing off. At most 2 REST requests a second go to one portal (Bitrix24's limit;
the OAuth server is not the portal).
"""

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from billing_webhooks import clock
from billing_webhooks.data import bitrix24, installations
from billing_webhooks.domain import licence, lifecycle, portal_tokens, schedule
from billing_webhooks.errors import PortalUnavailable, ServiceUnavailable
from billing_webhooks.models.base import utc_timestamp
from billing_webhooks.models.bitrix24 import AppInfo
from billing_webhooks.observability import logger, metrics

# Between two requests to one portal: Bitrix24 takes 2 a second (0.5 s), and room for the network's jitter.
GAP_SECONDS = 0.55
REFRESH_AGAIN = frozenset({bitrix24.EXPIRED_TOKEN, "invalid_token"})  # the portal's word on an access token


@dataclass
class Pacer:
    """Spaces one portal's requests GAP_SECONDS apart: never 3 within a second."""

    last: float = float("-inf")
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self) -> None:
        with self.lock:  # callers of one portal take turns
            gap = self.last + GAP_SECONDS - time.monotonic()
            if gap > 0:
                time.sleep(gap)
            self.last = time.monotonic()


_pacers: dict[str, Pacer] = {}
_pacers_lock = threading.Lock()
MAX_PACERS = 10_000


def pacer(member_id: str) -> Pacer:
    """The one pacer of a portal in this container, however many syncs of it run at once."""
    with _pacers_lock:
        if len(_pacers) >= MAX_PACERS:  # a portal last asked over a second ago needs no pacing
            idle = time.monotonic() - 1
            for name in [name for name, paced in _pacers.items() if paced.last < idle]:
                del _pacers[name]
        return _pacers.setdefault(member_id, Pacer())


def _ask_app_info(installation: dict[str, Any], pacer: Pacer) -> AppInfo:
    member_id = installation["member_id"]
    url = bitrix24.app_info_url(
        installation.get("domain"), installation.get("client_endpoint"), vouched=installation.get("vouched") is True
    )
    access = portal_tokens.access(member_id)
    pacer.wait()
    try:
        return bitrix24.read_app_info(url, access.token)
    except bitrix24.TokenRefused as refusal:
        if refusal.error not in REFRESH_AGAIN:
            raise
    access = portal_tokens.access(member_id, refused=access)  # once
    pacer.wait()
    try:
        return bitrix24.read_app_info(url, access.token)
    except bitrix24.TokenRefused as refusal:
        if refusal.error in REFRESH_AGAIN:  # a token fresh from the OAuth server refused: theirs to fix
            raise PortalUnavailable(f"The portal refused a freshly refreshed token ({refusal.error}).") from None
        raise


def sync_portal(member_id: str, now: datetime | None = None) -> dict[str, Any]:
    """Ask the portal's app.info and move its licence; what happened, by name (never a token)."""
    now = now or clock.now()
    installation = installations.get(member_id)
    if installation is None or installation.get("status") != installations.INSTALLED:
        return {"member_id": member_id, "outcome": "not installed"}
    checked = {"last_checked_at": utc_timestamp(now)}
    if installation.get("vouched") is not True:
        try:  # an install Bitrix24's OAuth server could not be asked about: asked now
            vouched = _vouch_later(installation, now)
        except (PortalUnavailable, ServiceUnavailable) as failure:
            return _failed(installation, now, failure)
        if not vouched:  # no tokens of its own to ask with, no licence to earn
            installations.record_check(
                member_id, {**checked, "last_check_outcome": "not vouched"}, remove=schedule.SYNC_ATTRIBUTES
            )
            return {"member_id": member_id, "outcome": "not vouched"}
        installation = {**installation, "vouched": True}
    try:
        info = _ask_app_info(installation, pacer(member_id))
    except portal_tokens.NoToken:
        installations.record_check(
            member_id, {**checked, "last_check_outcome": "no tokens kept"}, remove=schedule.SYNC_ATTRIBUTES
        )
        return {"member_id": member_id, "outcome": "no tokens kept"}
    except bitrix24.TokenRefused as refusal:
        if refusal.error == bitrix24.PAYMENT_REQUIRED:
            unpaid = {"licence_source": licence.FROM_PAYMENT_REQUIRED, "licence_ts": int(now.timestamp())}
            lifecycle.licence_unpaid(member_id, now, _bookkeeping(installation, now, "unpaid", unpaid), installation)
            return {"member_id": member_id, "outcome": "unpaid"}
        return _unreachable(installation, now, refusal.error)
    except (PortalUnavailable, ServiceUnavailable) as failure:
        return _failed(installation, now, failure)
    figures = licence.app_info_licence(info, now)
    # An answer that only confirms the licence moves nothing, the next check's time included: it is
    # scheduled from the end first known, or a grace's last check would come again a day later.
    moved = {} if licence.confirms(installation, figures) else figures
    checked = _bookkeeping(installation, now, "ok", moved)
    lifecycle.licence_from_app_info(member_id, info, now, checked, installation)
    return {"member_id": member_id, "outcome": "ok"}


def _vouch_later(installation: dict[str, Any], now: datetime) -> bool:
    """True once Bitrix24's OAuth server vouched for an install kept unvouched (with the refresh
    token it carried): its identity bound, its pair kept. False: nothing waits to be vouched for,
    or the server refused it (never asked again)."""
    member_id, domain = installation["member_id"], str(installation.get("domain") or "")
    try:
        if not portal_tokens.vouch_later(member_id, domain):
            return False
    except bitrix24.TokenRefused:
        metrics.add_metric(name="MemberUnverified", unit=MetricUnit.Count, value=1)
        return False
    if not installations.mark_vouched(member_id, domain, utc_timestamp(now)):
        return False  # uninstalled meanwhile, or another vouched install took its place
    metrics.add_metric(name="MemberVouchedLater", unit=MetricUnit.Count, value=1)
    return True


def _failed(installation: dict[str, Any], now: datetime, failure: PortalUnavailable | ServiceUnavailable) -> dict:
    """Bitrix24 (or our own store) did not answer: tried again sooner, backing off."""
    member_id = installation["member_id"]
    failures = int(installation.get("check_failures") or 0) + 1
    installations.record_check(
        member_id,
        {
            "last_checked_at": utc_timestamp(now),
            "last_check_outcome": f"failed: {failure.detail}"[:200],
            "check_failures": failures,
            "next_check_at": schedule.next_check_at(installation, now, failures),
        },
    )
    metrics.add_metric(name="LicenceCheckFailed", unit=MetricUnit.Count, value=1)
    return {"member_id": member_id, "outcome": "failed", "failures": failures}


def _bookkeeping(installation: dict[str, Any], now: datetime, outcome: str, moved: dict[str, Any]) -> dict[str, Any]:
    """What a check that got an answer records: its outcome, and when the next is due given the
    licence it moved to (`moved`)."""
    member_id = installation["member_id"]
    return {
        "last_checked_at": utc_timestamp(now),
        "last_check_outcome": outcome,
        "check_failures": 0,
        "sync_shard": schedule.sync_shard(member_id),
        "next_check_at": schedule.next_check_at({**installation, **moved}, now),
    }


def _unreachable(installation: dict[str, Any], now: datetime, error: str) -> dict[str, Any]:
    """Bitrix24 will not take the portal's tokens again (revoked, expired unused): only a reinstall
    or an update brings new ones. Out of the sync's index until then; counted for the alarm."""
    member_id = installation["member_id"]
    installations.record_check(
        member_id,
        {
            "last_checked_at": utc_timestamp(now),
            "last_check_outcome": "unreachable",
            "unreachable_since": installation.get("unreachable_since") or utc_timestamp(now),
            "unreachable_because": error,
        },
        remove=schedule.SYNC_ATTRIBUTES,
    )
    if error == portal_tokens.IN_DOUBT:  # not silent: the cure is the portal administrator's
        metrics.add_metric(name="PortalTokensInDoubt", unit=MetricUnit.Count, value=1)
        logger.error(
            "portal tokens in doubt: a refresh's answer was lost and its pair is spent; the portal's "
            "administrator reinstalls or updates the app to send a new one",
            extra={"member_id": member_id},
        )
        return {"member_id": member_id, "outcome": "tokens in doubt", "because": error}
    metrics.add_metric(name="PortalUnreachable", unit=MetricUnit.Count, value=1)
    logger.warning("portal unreachable", extra={"member_id": member_id, "because": error})
    return {"member_id": member_id, "outcome": "unreachable", "because": error}
