"""Keeping each portal's entitlement current, off the delivery path: whenever its licence (the
licence sync), its link (an operator, or the account_code default) or its linked account (the
account projector) moves, it is decided again (domain/entitlements.py) and written as one item,
only when it changed (data/entitlements.py). GET /entitlements/{member_id} reads that item.
"""

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from billing_webhooks.data import entitlements, events, installations
from billing_webhooks.domain import accounts
from billing_webhooks.domain.entitlements import decide
from billing_webhooks.settings import settings


def _digest(answer: dict[str, Any]) -> str:
    # What the answer says, not when it was computed.
    said = {name: value for name, value in answer.items() if name != "as_of"}
    return hashlib.sha256(json.dumps(said, sort_keys=True, default=str).encode()).hexdigest()


def _linked_account(kept: dict[str, Any]) -> dict[str, Any] | None:
    if kept.get("account_id") is None:
        return None
    found = accounts.show(int(kept["account_id"]))
    if found is None:  # linked before any notification named it: an account we know nothing of yet
        return {"account_id": kept["account_id"], "state": None, "trial": None, "open_invoices": []}
    return found[0]


def decided(member_id: str, kept: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The portal's entitlement decided at `now` from its installation and linked account (`kept`:
    its EntitlementsTable item, or {}), written nowhere."""
    return decide(member_id, installations.get(member_id), _linked_account(kept), now,
                  timedelta(days=settings().entitlement_grace_days))


def stored_answer(kept: dict[str, Any] | None, now: datetime) -> dict[str, Any] | None:
    """The kept entitlement while it still holds: None before its `changes_at` (a grace ending, an
    invoice's blocking day) has passed, or when none is kept."""
    if not kept or "entitlement" not in kept:
        return None
    changes_at = kept.get("changes_at")
    return kept["entitlement"] if changes_at is None or int(changes_at) > now.timestamp() else None


def recompute(member_id: str, now: datetime | None = None) -> tuple[dict[str, Any], bool]:
    """The portal's entitlement decided afresh, and whether it changed (then it is written)."""
    now = now or datetime.now(UTC)
    kept = entitlements.get(member_id) or {}
    answer = decided(member_id, kept, now)
    digest = _digest(answer)
    if kept.get("pending_event"):  # told of an earlier change, not yet published (a crash, an outage)
        publish_pending(member_id, kept["pending_event"])
    if kept.get("entitlement_digest") == digest:
        return kept["entitlement"], False
    changes_at = answer.get("changes_at")
    epoch = int(datetime.fromisoformat(changes_at.replace("Z", "+00:00")).timestamp()) if changes_at else None
    version = int(kept.get("entitlement_version") or 0)
    event = changed_event(answer, version + 1, kept.get("entitlement"))
    if not entitlements.put_entitlement(member_id, answer, digest, epoch, version, event):
        return answer, False
    publish_pending(member_id, event)
    return answer, True


ENTITLEMENT_CHANGED = "EntitlementChanged"


def changed_event(answer: dict[str, Any], version: int, previous: dict[str, Any] | None) -> dict[str, Any]:
    """EntitlementChanged's detail (docs/events.md): its `id` (member_id and version) is the same
    on every publication of this change, so a consumer drops a redelivery."""
    return {
        "id": f"{answer['member_id']}:{version}", "detail_type": ENTITLEMENT_CHANGED, "version": version,
        **{name: answer[name] for name in ("member_id", "entitled", "reason", "until", "grace_until", "licence",
                                           "account", "as_of")},
        "previous": None if not previous else {name: previous.get(name) for name in ("entitled", "reason")},
    }


def publish_pending(member_id: str, event: dict[str, Any]) -> None:
    """Publish the outbox's event, then empty the outbox; an outage leaves it for the next try."""
    events.publish(event["detail_type"], {name: value for name, value in event.items() if name != "detail_type"})
    entitlements.event_published(member_id, event["id"])


def link(member_id: str, account_id: int, *, source: str = entitlements.OPERATOR) -> dict[str, Any]:
    entitlements.link(member_id, accounts.account_key(account_id), account_id, source)
    return recompute(member_id)[0]


def unlink(member_id: str) -> dict[str, Any]:
    entitlements.unlink(member_id)
    return recompute(member_id)[0]


def account_moved(account_id: Any, account_code: Any) -> int:
    """An account's notification was projected: link it by default to the portal its account_code
    names (a member_id), unless an operator linked that portal elsewhere; decide again every
    portal linked to it. How many entitlements changed."""
    if isinstance(account_code, str) and 0 < len(account_code) <= 64:
        installation = installations.get(account_code)
        if installation is not None:
            entitlements.link(account_code, accounts.account_key(account_id), account_id, entitlements.ACCOUNT_CODE)
    return sum(recompute(member_id)[1] for member_id in entitlements.linked_to(accounts.account_key(account_id)))
