"""May this portal use the app right now, and why: one answer from the portal's Bitrix24 licence
and its linked billing account (docs/entitlements.md, the decision table; each row a test).

A pure function of what it is given and `now`: the first row that matches decides. An unknown
STATUS or account state never grants silently; it answers no, with a reason that names it.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from billing_webhooks.domain.licence import licence_state
from billing_webhooks.models.base import from_utc_timestamp, utc_timestamp

# AccountStateChange's states (seed 004 shows Active, Test, Deactive; lower case is seen too).
GRANTING_STATES = frozenset({"active", "test", "trial"})
BLOCKING_STATES = frozenset({"blocked", "suspended", "deactive", "deactivated", "closed"})
# Bitrix24's OAuth server refusing a portal's tokens (data/bitrix24.INVALID_GRANT): it revokes them
# when the app is uninstalled, so that is what it says when the uninstall's event was lost.
REVOKED = "invalid_grant"
ENDED_LICENCE = {"expired": "licence_expired", "trial_ended": "trial_ended", "unpaid": "licence_unpaid"}


def _instant(text: str | None) -> datetime | None:
    return from_utc_timestamp(text) if text else None


def _day_start(day: Any) -> datetime | None:
    """An invoice's `blocking_on` (a date): blocked from the start of that day, UTC."""
    try:
        return datetime.fromisoformat(str(day)).replace(tzinfo=UTC) if day else None
    except ValueError:
        return None


def _licence_as_of(installation: dict[str, Any]) -> str | None:
    ts = installation.get("licence_ts")
    return utc_timestamp(datetime.fromtimestamp(int(ts), UTC)) if ts is not None else None


def _account_summary(account: dict[str, Any], now: datetime) -> dict[str, Any]:
    overdue: list[tuple[datetime, Any]] = []
    upcoming: list[tuple[datetime, Any]] = []
    for invoice in account.get("open_invoices") or []:
        blocks = _day_start((invoice.get("unpaid") or {}).get("blocking_on"))
        if blocks is not None:
            (overdue if blocks <= now else upcoming).append((blocks, invoice.get("invoice_id")))
    return {
        "account_id": account.get("account_id"),
        "state": (account.get("state") or {}).get("state"),
        "overdue_invoices": [invoice_id for _, invoice_id in sorted(overdue, key=lambda pair: pair[0])],
        "trial": account.get("trial"),
        "next_blocking": min((blocks for blocks, _ in upcoming), default=None),
    }


def decide(
    member_id: str, installation: dict[str, Any] | None, account: dict[str, Any] | None, now: datetime, grace: timedelta
) -> dict[str, Any]:
    """The entitlement of `member_id` at `now`: `installation` as stored (None: none), `account` the
    linked account's view (domain/accounts.show) or None, `grace` how long an ended or unpaid
    licence still grants. `changes_at`: the next instant the answer changes by itself (a licence
    or grace ending, an invoice's blocking day), for the scheduled recheck."""
    licence = licence_state(installation or {}, now)
    summary = _account_summary(account, now) if account is not None else None
    answer = {
        "member_id": member_id,
        "as_of": utc_timestamp(now),
        "grace_until": None,
        "licence": {
            **licence,
            **{
                name: (installation or {}).get(key)
                for name, key in (("status", "licence_status"), ("source", "licence_source"))
            },
            "as_of": _licence_as_of(installation or {}),
        },
        "account": None
        if summary is None
        else {name: summary[name] for name in ("account_id", "state", "overdue_invoices", "trial")},
    }
    ends = [_instant(licence["until"])] + ([summary["next_blocking"]] if summary else [])

    def verdict(entitled: bool, reason: str, until: datetime | None = None) -> dict[str, Any]:
        future = [moment for moment in (*ends, until) if moment is not None and moment > now]
        return {
            **answer,
            "entitled": entitled,
            "reason": reason,
            "until": utc_timestamp(until) if entitled and until else None,
            "changes_at": utc_timestamp(min(future)) if future else None,
        }

    if installation is None or installation.get("status") != "installed":
        return verdict(False, "not_installed")
    if installation.get("vouched") is not True:
        return verdict(False, "not_vouched: Bitrix24 never vouched for this install, so its licence is unknown")
    if installation.get("unreachable_because") == REVOKED:  # revoked at an uninstall whose event never came
        return verdict(False, "portal_unreachable: Bitrix24 refuses its tokens (uninstalled, or revoked)")
    state = licence["state"]
    grace_until: datetime | None = None
    if state in ENDED_LICENCE:
        grace_until = _instant(licence["since"]) or now
        grace_until += grace
        answer["grace_until"] = utc_timestamp(grace_until)
        if grace_until <= now:
            return verdict(False, ENDED_LICENCE[state])
    elif state not in ("trial", "active"):
        return verdict(False, f"licence_{state.replace(' ', '_')}")  # unknown, or an unknown STATUS, named
    if summary is not None:
        account_state = summary["state"]
        if account_state is not None and str(account_state).lower() in BLOCKING_STATES:
            return verdict(False, f"account_{str(account_state).lower()}")
        if account_state is not None and str(account_state).lower() not in GRANTING_STATES:
            return verdict(False, f"account_state_unknown: {str(account_state)[:64]}")
        if summary["overdue_invoices"]:
            return verdict(False, "invoice_overdue: " + ", ".join(map(str, summary["overdue_invoices"][:10])))
    if grace_until is not None:
        return verdict(True, f"{ENDED_LICENCE[state]}_in_grace", grace_until)
    return verdict(True, "trial" if state == "trial" else "paid", _instant(licence["until"]))
