"""Keeping each portal's entitlement current, off the delivery path: whenever its licence (the
licence sync), its link (an operator, or the account_code default) or its linked account (the
account projector) moves, it is decided again (domain/entitlements.py) and written as one item,
only when it changed (data/entitlements.py). GET /entitlements/{member_id} reads that item.
"""

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from billing_webhooks import clock
from billing_webhooks.data import entitlements, installations
from billing_webhooks.domain import accounts, erasure
from billing_webhooks.domain.entitlement_events import changed_events
from billing_webhooks.domain.entitlements import decide
from billing_webhooks.errors import ServiceUnavailable
from billing_webhooks.settings import settings


def _digest(answer: dict[str, Any]) -> str:
    # What the answer says, not when it was computed.
    said = {name: value for name, value in answer.items() if name != "as_of"}
    return hashlib.sha256(json.dumps(said, sort_keys=True, default=str).encode()).hexdigest()


def _linked_account(kept: dict[str, Any]) -> dict[str, Any] | None:
    if kept.get("account_id") is None:
        return None
    found = accounts.standing(int(kept["account_id"]))
    if found is None:  # linked before any notification named it: an account we know nothing of yet
        return {"account_id": kept["account_id"], "state": None, "trial": None, "open_invoices": []}
    return found


def decided(
    member_id: str, kept: dict[str, Any], now: datetime, installation: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The portal's entitlement decided at `now` from its installation (read here unless given)
    and linked account (`kept`: its EntitlementsTable item, or {}), written nowhere."""
    return decide(
        member_id,
        installation if installation is not None else installations.get(member_id),
        _linked_account(kept),
        now,
        timedelta(days=settings().entitlement_grace_days),
    )


def stored_answer(kept: dict[str, Any] | None, now: datetime) -> dict[str, Any] | None:
    """The kept entitlement while it still holds: None before its `changes_at` (a grace ending, an
    invoice's blocking day) has passed, or when none is kept."""
    if not kept or "entitlement" not in kept:
        return None
    deadline = kept.get("deadline_at")
    return kept["entitlement"] if deadline is None or int(deadline) > now.timestamp() else None


# Writers racing on one portal: each refused write reads again; past this many, an outage it is.
MAX_ATTEMPTS = 8


def recompute(member_id: str, now: datetime | None = None) -> tuple[dict[str, Any], bool]:
    """The portal's entitlement decided afresh, and whether it changed. A change is written with
    the version it read as its condition; a write refused because another landed first reads
    again and decides again, until its own write lands or the kept answer already holds. A
    change that tells something (domain/entitlement_events.py) takes the next `sequence`; the
    events themselves come from the table's stream (jobs/entitlement_events.py)."""
    now = now or clock.now()
    for _ in range(MAX_ATTEMPTS):
        kept = entitlements.get(member_id) or {}
        installation = installations.get(member_id)
        if erasure.purged(installation):  # its data erased (CLEAN): none is kept, whatever moved
            return decided(member_id, {}, now, installation), False
        answer = decided(member_id, kept, now, installation)
        digest = _digest(answer)
        if kept.get("entitlement_digest") == digest:
            return kept["entitlement"], False
        changes_at = answer.get("changes_at")
        deadline = int(datetime.fromisoformat(changes_at).timestamp()) if changes_at else None
        sequence = int(kept.get("sequence") or 0)
        if changed_events(answer, sequence + 1, kept.get("entitlement")):
            sequence += 1
        if entitlements.put_entitlement(
            member_id, answer, digest, deadline, int(kept.get("entitlement_version") or 0), sequence
        ):
            return answer, True
    raise ServiceUnavailable(f"The portal's entitlement kept moving under {MAX_ATTEMPTS} writes; retry later.")
