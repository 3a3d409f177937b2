"""A portal as the read API and the CLI show it: its installation and licence, never a token or
its digest."""

from datetime import UTC, datetime
from typing import Any

from billing_webhooks import clock
from billing_webhooks.domain.licence import FROM_APP_INFO, FROM_PAYMENT, licence_state
from billing_webhooks.models.base import utc_timestamp

TOKENS_IN_DOUBT = "tokens_in_doubt"  # why a portal is unreachable: a refresh's answer lost (domain/portal_tokens.py)
CURES = {
    TOKENS_IN_DOUBT: "A token refresh's answer was lost and the pair it rotated is spent: the portal's "
    "administrator reinstalls or updates the app, which sends a new pair. Its licence keeps its known end.",
    "invalid_grant": "Bitrix24 refuses the portal's tokens (revoked, or unused 180 days): the portal's "
    "administrator reinstalls or updates the app, which sends a new pair.",
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
            **licence_state(installation, now or clock.now()),
        },
        "sync": {
            "reachable": installation.get("unreachable_since") is None,
            "unreachable_since": installation.get("unreachable_since"),
            "unreachable_because": installation.get("unreachable_because"),
            "pair_in_doubt": installation.get("unreachable_because") == TOKENS_IN_DOUBT,
            # What mends it, for the operator who reads this: only the portal can send a new pair.
            "cure": CURES.get(str(installation.get("unreachable_because")))
            if installation.get("unreachable_since")
            else None,
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
