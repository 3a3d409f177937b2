"""Step 2 for ONAPPPAYMENT and ONAPPUNINSTALL: the application token stored for their portal.

Kept apart from auth.py (billing) and portal_confirmation.py (install, update): each function
loads only the checks it makes (cold start).
"""

import hmac
from typing import Any

from billing_webhooks.data import installations
from billing_webhooks.errors import MissingCredentials, WrongCredentials
from billing_webhooks.http.auth import digest_matches_any, read_secret
from billing_webhooks.settings import settings
from billing_webhooks.wire.credentials import MAX_MEMBER_ID_LENGTH, portal_auth_of
from billing_webhooks.wire.delivery import Delivery

# One text for every portal refusal: a known and an unknown portal must not answer differently.
PORTAL_REFUSED = "The application token is not valid for this portal."


def portal_auth(delivery: Delivery) -> tuple[dict[str, Any], str, str]:
    """(auth, member_id, the SHA-256 of auth.application_token)."""
    auth = portal_auth_of(delivery.payload)
    member_id, digest = auth.get("member_id"), delivery.portal_token_sha256
    if digest is None or not isinstance(member_id, str) or not member_id:
        raise MissingCredentials("auth[member_id] and auth[application_token] are required.")
    if len(member_id) > MAX_MEMBER_ID_LENGTH:
        raise WrongCredentials(PORTAL_REFUSED)
    return auth, member_id, digest


def installed_by_hand(member_id: str) -> str | None:
    """The portal's token in the fallback secret (a portal installed by hand), if it is there."""
    portals = read_secret(settings().bitrix24_secret_id)
    token = portals.get(member_id) if isinstance(portals, dict) else None
    return token if isinstance(token, str) and token else None


def token_matches(installation: dict[str, Any], digest: str) -> bool:
    stored = str(installation.get("application_token_sha256") or "")
    return hmac.compare_digest(stored.encode(), digest.encode())


class PortalToken:
    """`auth.application_token` must be the one stored for the portal's `member_id`.

    A portal in the fallback secret (installed by hand) is checked there, whatever record an
    install may have written for its member_id: the operator's word wins. Any other portal is
    checked against its installation record, which is what the event may change (None for a
    portal installed by hand). ONAPPUNINSTALL (`accept_uninstalled`) has no proof but the stored
    token; once uninstalled, a redelivery is still recognised (a duplicate) rather than refused."""

    def __init__(self, *, accept_uninstalled: bool) -> None:
        self.statuses = (
            {installations.INSTALLED, installations.UNINSTALLED} if accept_uninstalled else {installations.INSTALLED}
        )

    def secret_ids(self) -> list[str]:
        return [settings().bitrix24_secret_id]  # the fallback map is read on every portal event

    def __call__(self, delivery: Delivery) -> dict[str, Any] | None:
        _, member_id, digest = portal_auth(delivery)
        by_hand = installed_by_hand(member_id)
        if by_hand is not None:
            if not digest_matches_any([digest], [by_hand]):
                raise WrongCredentials(PORTAL_REFUSED)
            return None
        installation = installations.get(member_id)
        domain = str(portal_auth_of(delivery.payload).get("domain") or "").strip().lower()
        # Compared for an unknown portal too, so that timing does not tell which portals we know.
        if (
            not token_matches(installation or {}, digest)
            or (installation or {}).get("status") not in self.statuses
            or (installation or {}).get("domain") != domain
        ):  # the token of the portal on its own domain
            raise WrongCredentials(PORTAL_REFUSED)
        return installation


portal_application_token = PortalToken(accept_uninstalled=False)
portal_uninstall_token = PortalToken(accept_uninstalled=True)
