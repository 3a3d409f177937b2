"""Step 2 of the pipeline: who sent this? Refuse before trusting anything in the body.

Secrets live in Secrets Manager, read once per container per SECRETS_CACHE_SECONDS (secrets.py).
Every comparison is constant-time; no token is ever logged.
"""

import hashlib
import hmac
import os
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from billing_webhooks.errors import MissingCredentials, ServiceUnavailable, WebhookError, WrongCredentials

# An authenticator looks at the raw event and the decoded body and raises if it is not convinced;
# what it returns (what it learned of the sender, e.g. the portal's installation) goes to the
# function's effect.
Authenticator = Callable[[dict[str, Any], dict[str, Any]], Any]


def _secret(env_var: str) -> Any:
    """The JSON secret named by `env_var`, cached for SECRETS_CACHE_SECONDS."""
    from billing_webhooks.secrets import json_secret

    try:
        return json_secret(os.environ[env_var])
    except Exception as exc:  # any failure to read our own secret is ours, not the sender's
        raise ServiceUnavailable(f"Credentials cannot be checked right now ({exc.__class__.__name__}).") from None


def matches_any(presented: str, active: Iterable[str]) -> bool:
    """Constant-time: every active token is compared, whichever matches."""
    given = presented.encode()
    results = [hmac.compare_digest(given, str(token).encode()) for token in active]
    return any(results)


def token_sha256(token: str) -> str:
    # Tokens are 128+ random bits (Bitrix24's, our generated secrets), so a plain hash is enough
    # to make a leaked installation table or rescue queue useless for forging deliveries.
    return hashlib.sha256(token.encode()).hexdigest()


def presented_digests(event: dict[str, Any], tokens: list[str]) -> list[str]:
    """SHA-256 of each presented token; a replayed delivery (rescue.py) brings only these."""
    from billing_webhooks.rescue import rescued

    parcel = rescued(event)
    if parcel is not None:
        return [str(digest) for digest in parcel.get("credential_sha256") or []]
    return [token_sha256(token) for token in tokens]


def digest_matches_any(presented: list[str], active: Iterable[str]) -> bool:
    """Tokens compared as digests, so that a parked delivery is checked like a live one."""
    expected = [token_sha256(token) for token in active]
    return any([matches_any(digest, expected) for digest in presented])


def presented_billing_tokens(event: dict[str, Any]) -> list[str]:
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    tokens = []
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        tokens.append(credentials.strip())
    if headers.get("x-webhook-token", "").strip():
        tokens.append(headers["x-webhook-token"].strip())
    query = dict(parse_qsl(event.get("rawQueryString") or "", keep_blank_values=True))
    if query.get("token"):
        tokens.append(query["token"])
    return tokens


def _active_values(secret: Any) -> list[str]:
    """A rotation secret is a JSON object whose every non-empty string value is active."""
    return [value for value in secret.values() if isinstance(value, str) and value] if isinstance(secret, dict) else []


SIGNATURE_TOLERANCE_SECONDS = 300
SIGNATURE_PREFIX = "sha256="


def signature(key: str, timestamp: str, body: bytes) -> str:
    """What the sender puts in X-Webhook-Signature: HMAC-SHA256 of "<timestamp>." + the raw body."""
    return SIGNATURE_PREFIX + hmac.new(key.encode(), timestamp.encode() + b"." + body, "sha256").hexdigest()


def billing_signature(event: dict[str, Any]) -> None:
    """`X-Webhook-Timestamp` (Unix seconds, within ±5 minutes: a captured delivery cannot be
    replayed later) and `X-Webhook-Signature: sha256=<hex>` (several, comma-separated, while the
    sender rotates) over the raw body, checked against every active signing key."""
    import time

    from billing_webhooks.decoding import raw_body
    from billing_webhooks.rescue import received_epoch, rescued

    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    timestamp = headers.get("x-webhook-timestamp", "").strip()
    presented = [part.strip() for part in headers.get("x-webhook-signature", "").split(",") if part.strip()]
    if not timestamp.isdigit() or not presented:
        raise MissingCredentials(
            "Sign the body: X-Webhook-Timestamp (Unix seconds) and X-Webhook-Signature: sha256=<hex>."
        )
    parcel = rescued(event)
    now = received_epoch(parcel) if parcel is not None else time.time()  # a replay: as it was received
    if abs(now - int(timestamp)) > SIGNATURE_TOLERANCE_SECONDS:
        raise WrongCredentials(f"X-Webhook-Timestamp is more than {SIGNATURE_TOLERANCE_SECONDS} s away from now.")
    body = raw_body(event)
    expected = [signature(key, timestamp, body) for key in _active_values(_secret("BILLING_SIGNING_SECRET_ID"))]
    if not any([matches_any(given, expected) for given in presented]):
        raise WrongCredentials("X-Webhook-Signature does not match the body.")


def billing_credentials(event: dict[str, Any], payload: dict[str, Any]) -> None:
    """Billing: the shared secret as `Authorization: Bearer`, `X-Webhook-Token` or `?token=`,
    against every active secret; and, when BILLING_SIGNATURE=required, an HMAC signature."""
    presented = presented_digests(event, presented_billing_tokens(event))
    if not presented:
        raise MissingCredentials("Send the shared secret as 'Authorization: Bearer <token>'.")
    if not digest_matches_any(presented, _active_values(_secret("BILLING_SECRET_ID"))):
        raise WrongCredentials("The shared secret is not valid.")
    if _signatures_required():
        billing_signature(event)


def _signatures_required() -> bool:
    return os.environ.get("BILLING_SIGNATURE", "off") == "required"


def billing_secret_ids() -> list[str]:
    """The secrets billing_credentials reads on every delivery."""
    names = ["BILLING_SECRET_ID", "BILLING_SIGNING_SECRET_ID"] if _signatures_required() else ["BILLING_SECRET_ID"]
    return [os.environ[name] for name in names]


# What the pipeline may fetch ahead, while it makes its DynamoDB client on a cold start.
billing_credentials.secret_ids = billing_secret_ids


def _portal_auth(event: dict[str, Any], payload: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    """(auth, member_id, the SHA-256 of auth.application_token)."""
    auth = payload.get("auth")
    auth = auth if isinstance(auth, dict) else {}
    token, member_id = auth.get("application_token"), auth.get("member_id")
    tokens = [token] if isinstance(token, str) and token else []
    digests = presented_digests(event, tokens)
    if not digests or not isinstance(member_id, str) or not member_id:
        raise MissingCredentials("auth[member_id] and auth[application_token] are required.")
    return auth, member_id, digests[-1]


def _stored_portal_token(event: dict[str, Any], payload: dict[str, Any], *, accept_uninstalled: bool) -> dict[str, Any] | None:
    """`auth.application_token` must be the one stored for the portal's `member_id`.

    The portal's installation record decides; a portal with none is looked up in the configured
    secret map (a single local app, installed by hand). Returns the installation, if any."""
    from billing_webhooks import installations

    _, member_id, digest = _portal_auth(event, payload)
    installation = installations.get(member_id)
    if installation is not None:
        statuses = {installations.INSTALLED, installations.UNINSTALLED} if accept_uninstalled else {installations.INSTALLED}
        if not installations.digest_matches(installation, digest) or installation.get("status") not in statuses:
            raise WrongCredentials("The application token is not valid for this portal, or the app is not installed.")
        return installation
    portals = _secret("BITRIX24_SECRET_ID")
    expected = portals.get(member_id) if isinstance(portals, dict) else None
    # Compare even for an unknown portal so that timing does not tell which portals we know.
    if not digest_matches_any([digest], [expected if isinstance(expected, str) else ""]) or not expected:
        raise WrongCredentials("The application token is not valid for this portal.")
    return None


def portal_application_token(event: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any] | None:
    """Any event of an installed portal: its stored token, and the app still installed."""
    return _stored_portal_token(event, payload, accept_uninstalled=False)


def portal_uninstall_token(event: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any] | None:
    """ONAPPUNINSTALL has no proof but the stored token; once uninstalled, a redelivery is still
    recognised (answered as a duplicate) rather than refused."""
    return _stored_portal_token(event, payload, accept_uninstalled=True)


def _confirmed_by_portal(event: dict[str, Any], payload: dict[str, Any], *, known_portal: bool) -> Any:
    """ONAPPINSTALL / ONAPPUPDATE carry the token we will trust from now on, so they are believed
    only when the portal itself, asked at its own checked address, says our app is installed."""
    from billing_webhooks import bindings, installations, portal
    from billing_webhooks.models.bitrix24 import PortalConfirmation
    from billing_webhooks.rescue import rescued

    auth, member_id, _ = _portal_auth(event, payload)
    parcel = rescued(event)
    if parcel is not None and isinstance(parcel.get("sender"), dict):
        # The portal confirmed it when the delivery arrived; the parcel kept its answer, not its token.
        confirm = lambda: PortalConfirmation.model_validate(parcel["sender"])  # noqa: E731
    else:
        access_token = auth.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise MissingCredentials("auth[access_token] is required to confirm the installation with the portal.")
        url = portal.app_info_url(auth.get("domain"), auth.get("client_endpoint"))  # refuses before any call
        confirm = lambda: PortalConfirmation(  # noqa: E731
            info=_confirmed_app_info(portal.app_info(url, access_token)), handlers=bindings.handler_urls(event))
    domain = str(auth.get("domain") or "").strip().lower()
    try:
        installation = installations.get(member_id)
    except ServiceUnavailable as error:
        # Storage is down and the delivery will be parked: ask the portal now, while we hold the
        # access token, so that its replay needs no token (a refusal answers as it would have).
        error.sender = confirm().model_dump(mode="json")
        raise
    installed = installation is not None and installation.get("status") == installations.INSTALLED
    if known_portal and not installed:
        raise WrongCredentials("This portal has no installation of the app to update.")
    if installed and installation.get("domain") != domain:
        raise WrongCredentials("This portal is installed on another domain.")
    return confirm()


def _confirmed_app_info(info: Any) -> Any:
    app_code = os.environ.get("BITRIX24_APP_CODE")
    if not app_code:
        raise WebhookError("Installs cannot be confirmed: BITRIX24_APP_CODE is not configured.")
    if info.CODE != app_code or not info.INSTALLED:
        raise WrongCredentials("The portal does not confirm that this app is installed.")
    return info


def portal_confirms_install(event: dict[str, Any], payload: dict[str, Any]) -> Any:
    return _confirmed_by_portal(event, payload, known_portal=False)


def portal_confirms_update(event: dict[str, Any], payload: dict[str, Any]) -> Any:
    return _confirmed_by_portal(event, payload, known_portal=True)
