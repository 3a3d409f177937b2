"""Which billing account decides a portal's entitlement: an operator's link wins (`links set`,
`links clear`); otherwise an account whose account_code names the portal (its member_id, or the
domain of a vouched installation) links it by default. Every move of a link decides the portal's
entitlement again (domain/entitlement_updates.py).
"""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from billing_webhooks.data import entitlements, installations
from billing_webhooks.domain import accounts, erasure
from billing_webhooks.domain.entitlement_updates import recompute
from billing_webhooks.observability import logger, metrics


def link(member_id: str, account_id: int) -> dict[str, Any]:
    """An operator's link (`links set`): it wins over any default one, and settles conflicts."""
    entitlements.link(member_id, accounts.account_key(account_id), account_id)
    return recompute(member_id)[0]


def unlink(member_id: str) -> dict[str, Any]:
    """An operator's `links clear`: no account decides the portal until an operator links one."""
    entitlements.pin_unlinked(member_id)
    return recompute(member_id)[0]


def conflicts(limit: int = 100, start: Any = None) -> tuple[list[dict[str, Any]], Any]:
    """The portals another account's code names while one decides them (`links conflicts`)."""
    return entitlements.with_conflicts(limit, start)


def _named_by(account_code: Any) -> list[str]:
    """The vouched portals an account_code names: the one whose member_id it is (Bitrix24's
    member_ids hold no dot), else those on the domain it is (only Bitrix24 binds a member_id to
    its domain). An unvouched install, which anyone can make, is named by no code."""
    if not isinstance(account_code, str) or not 0 < len(account_code) <= 253:
        return []
    code = account_code.strip()
    if "." not in code:  # Bitrix24's member_ids are lower-case hex: a code may be written in any case
        for member_id in dict.fromkeys((code, code.lower())):
            kept = installations.get(member_id)
            if kept is not None:
                return [member_id] if kept.get("vouched") is True and not erasure.purged(kept) else []
        return []
    return [
        member_id
        for member_id in installations.on_domain(code.lower())
        if (kept := installations.get(member_id) or {}).get("vouched") is True and not erasure.purged(kept)
    ]


def account_moved(account_id: Any, account_code: Any) -> int:
    """An account's notification was projected: link it by default to the portals its
    account_code names, where nothing decides them yet (the first link stands: another account
    naming a linked portal is a conflict, kept and shown, never applied); drop its default links
    its code no longer names; decide again every portal that moved. How many entitlements changed."""
    key = accounts.account_key(account_id)
    named = _named_by(account_code)
    for member_id in named:
        written, held = entitlements.link_by_default(member_id, key, account_id)
        if not written and held.get("account_key") != key and held.get("account_key") is not None:
            if entitlements.note_conflict(member_id, key):
                metrics.add_metric(name="LinkConflicts", unit=MetricUnit.Count, value=1)
                logger.warning(
                    "another billing account names a linked portal",
                    extra={"member_id": member_id, "account_id": account_id, "linked_to": held.get("account_id")},
                )
    moved = set(entitlements.linked_to(key)) | set(named)
    for member_id in moved - set(named):  # its code changed: the default link goes (an operator's stays)
        entitlements.unlink_default(member_id, key)
    return sum(recompute(member_id)[1] for member_id in sorted(moved))
