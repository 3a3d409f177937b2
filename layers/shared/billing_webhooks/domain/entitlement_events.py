"""What a change of a portal's entitlement tells the vendor's systems (docs/events.md): a pure
function of the entitlement before and after the change and the change's `sequence`. The events
of one change share its sequence; each has an id (member_id, sequence, kind) that is the same on
every publication of it, so a consumer drops a redelivery and sees a gap by the sequence.
"""

from datetime import timedelta
from typing import Any

from billing_webhooks.models.base import from_utc_timestamp

# What the vendor's systems are told (docs/events.md), one detail-type per kind.
ENTITLEMENT_CHANGED, LICENCE_CHANGED = "EntitlementChanged", "LicenceChanged"


ACCOUNT_STATE_CHANGED, INVOICE_OVERDUE = "AccountStateChanged", "InvoiceOverdue"


MAX_OVERDUE_EVENTS = 10


def day_apart(before: Any, after: Any) -> bool:
    """Two instants a day or more apart (or one missing): an `until` that moved, not a recount."""
    if not before or not after:
        return before != after
    return abs(from_utc_timestamp(after) - from_utc_timestamp(before)) >= timedelta(days=1)


def changed_events(answer: dict[str, Any], sequence: int, previous: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The events this change tells, each with an `id` (member_id, sequence, kind) that is the same on
    every publication of it, so a consumer drops a redelivery. A licence or account confirmed as it
    was tells nothing: a sync that only recounts DAYS is no change."""
    member_id, before = answer["member_id"], previous or {}
    # `version` is `sequence` under the name events carried before it (kept for their consumers).
    base = {"member_id": member_id, "sequence": sequence, "version": sequence, "as_of": answer["as_of"]}
    told = []
    if (
        not previous
        or (answer["entitled"], answer["reason"]) != (before.get("entitled"), before.get("reason"))
        or day_apart(before.get("until"), answer["until"])
        or day_apart(before.get("grace_until"), answer["grace_until"])
    ):
        told.append(
            {
                **base,
                "id": f"{member_id}:{sequence}",
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
                "id": f"{member_id}:{sequence}:licence",
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
                "id": f"{member_id}:{sequence}:account-state",
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
            "id": f"{member_id}:{sequence}:overdue:{invoice}",
            "detail_type": INVOICE_OVERDUE,
            "account_id": account["account_id"],
            "invoice_id": invoice,
        }
        for invoice in fresh[:MAX_OVERDUE_EVENTS]
    ]
    return told
