"""Which billing account decides a portal's entitlement: an operator's link wins (`links set`,
`links clear`); otherwise an account whose account_code names the portal (its member_id, or the
domain of a vouched installation) links it by default. Every move of a link decides the portal's
entitlement again (domain/entitlement_updates.py).
"""

from typing import Any

from billing_webhooks.data import entitlements, installations
from billing_webhooks.domain import accounts
from billing_webhooks.domain.entitlement_updates import recompute


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
