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
    return decide(
        member_id,
        installations.get(member_id),
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


def recompute(member_id: str, now: datetime | None = None) -> tuple[dict[str, Any], bool]:
    """The portal's entitlement decided afresh, and whether it changed (then it is written, with
    the events that tell of it, and they are published)."""
    now = now or datetime.now(UTC)
    kept = entitlements.get(member_id) or {}
    answer = decided(member_id, kept, now)
    digest = _digest(answer)
    stamp = int(now.timestamp())
    since, version = int(kept.get("pending_since") or 0), int(kept.get("entitlement_version") or 0)
    if (
        kept.get("pending_events")
        and since <= stamp - PENDING_SECONDS
        and entitlements.claim_outbox(member_id, version, since, stamp)
    ):
        # Told of an earlier change, never published (a crash, an outage): its writer is gone, and
        # of the callers that found it, this one took it over. A younger outbox is its writer's
        # to publish: publishing it here too would tell it twice.
        publish_pending(member_id, kept["pending_events"], version, kept.get("deadline_at"))
    if kept.get("entitlement_digest") == digest:
        return kept["entitlement"], False
    changes_at = answer.get("changes_at")
    deadline = int(datetime.fromisoformat(changes_at.replace("Z", "+00:00")).timestamp()) if changes_at else None
    told = changed_events(answer, version + 1, kept.get("entitlement"))
    if not entitlements.put_entitlement(
        member_id, answer, digest, deadline, version, told, stamp, stamp + PENDING_SECONDS
    ):
        return answer, False
    publish_pending(member_id, told, version + 1, deadline)
    return answer, True


PENDING_SECONDS = 60  # an outbox this old is taken as lost by its writer: the minute's sweep publishes it


# What the vendor's systems are told (docs/events.md), one detail-type per kind.
ENTITLEMENT_CHANGED, LICENCE_CHANGED = "EntitlementChanged", "LicenceChanged"
ACCOUNT_STATE_CHANGED, INVOICE_OVERDUE = "AccountStateChanged", "InvoiceOverdue"
MAX_OVERDUE_EVENTS = 10


def _day_apart(before: Any, after: Any) -> bool:
    """Two instants a day or more apart (or one missing): an `until` that moved, not a recount."""
    if not before or not after:
        return before != after
    parse = lambda text: datetime.fromisoformat(text.replace("Z", "+00:00"))  # noqa: E731
    return abs(parse(after) - parse(before)) >= timedelta(days=1)


def changed_events(answer: dict[str, Any], version: int, previous: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The events this change tells, each with an `id` (member_id, version, kind) that is the same on
    every publication of it, so a consumer drops a redelivery. A licence or account confirmed as it
    was tells nothing: a sync that only recounts DAYS is no change."""
    member_id, before = answer["member_id"], previous or {}
    base = {"member_id": member_id, "version": version, "as_of": answer["as_of"]}
    told = []
    if (
        not previous
        or (answer["entitled"], answer["reason"]) != (before.get("entitled"), before.get("reason"))
        or _day_apart(before.get("until"), answer["until"])
        or _day_apart(before.get("grace_until"), answer["grace_until"])
    ):
        told.append(
            {
                **base,
                "id": f"{member_id}:{version}",
                "detail_type": ENTITLEMENT_CHANGED,
                **{name: answer[name] for name in ("entitled", "reason", "until", "grace_until", "licence", "account")},
                "previous": None if not previous else {name: before.get(name) for name in ("entitled", "reason")},
            }
        )
    old_licence, licence = before.get("licence") or {}, answer["licence"]
    if previous and (old_licence.get("state"), old_licence.get("status")) != (licence["state"], licence["status"]):
        told.append(
            {
                **base,
                "id": f"{member_id}:{version}:licence",
                "detail_type": LICENCE_CHANGED,
                "licence": licence,
                "previous": {name: old_licence.get(name) for name in ("state", "status")},
            }
        )
    old_account, account = before.get("account") or {}, answer["account"] or {}
    if (
        previous
        and account
        and old_account.get("account_id") == account["account_id"]
        and (old_account.get("state") != account["state"])
    ):
        told.append(
            {
                **base,
                "id": f"{member_id}:{version}:account-state",
                "detail_type": ACCOUNT_STATE_CHANGED,
                "account_id": account["account_id"],
                "state": account["state"],
                "previous_state": old_account.get("state"),
            }
        )
    fresh = [
        invoice
        for invoice in account.get("overdue_invoices") or []
        if invoice not in (old_account.get("overdue_invoices") or [])
    ]
    told += [
        {
            **base,
            "id": f"{member_id}:{version}:overdue:{invoice}",
            "detail_type": INVOICE_OVERDUE,
            "account_id": account["account_id"],
            "invoice_id": invoice,
        }
        for invoice in fresh[:MAX_OVERDUE_EVENTS]
    ]
    return told


def publish_pending(member_id: str, told: list[dict[str, Any]], version: int, deadline: Any) -> None:
    """Publish the outbox's events, then empty the outbox; an outage leaves it for the minute's
    sweep (its index entry is due PENDING_SECONDS after the write)."""
    for event in told:
        events.publish(event["detail_type"], {name: value for name, value in event.items() if name != "detail_type"})
    entitlements.events_published(member_id, version, int(deadline) if deadline is not None else None)


def link(member_id: str, account_id: int, *, source: str = entitlements.OPERATOR) -> dict[str, Any]:
    entitlements.link(member_id, accounts.account_key(account_id), account_id, source)
    return recompute(member_id)[0]


def unlink(member_id: str) -> dict[str, Any]:
    entitlements.unlink(member_id)
    return recompute(member_id)[0]


def _named_by(account_code: Any) -> list[str]:
    """The portals an account_code names: the one whose member_id it is, else those on the domain
    it is (a vouched installation, which only Bitrix24 binds to its domain)."""
    if not isinstance(account_code, str) or not 0 < len(account_code) <= 253:
        return []
    if installations.get(account_code) is not None:
        return [account_code]
    domain = account_code.strip().lower()
    if "." not in domain:
        return []
    return [
        member_id
        for member_id in installations.on_domain(domain)
        if (installations.get(member_id) or {}).get("vouched") is True
    ]


def account_moved(account_id: Any, account_code: Any) -> int:
    """An account's notification was projected: link it by default to the portal its account_code
    names (a member_id, or a domain), unless an operator linked that portal elsewhere; decide
    again every portal linked to it. How many entitlements changed."""
    for member_id in _named_by(account_code):
        entitlements.link(member_id, accounts.account_key(account_id), account_id, entitlements.ACCOUNT_CODE)
    return sum(recompute(member_id)[1] for member_id in entitlements.linked_to(accounts.account_key(account_id)))
