"""Step 2 of the pipeline: who sent this? Refuse before trusting anything in the body.

Secrets live in Secrets Manager, read once per container per SECRETS_CACHE_SECONDS (secrets.py).
Every comparison is constant-time; no token is ever logged.
"""

import hmac
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from billing_webhooks.credentials import presented_billing_tokens, token_sha256
from billing_webhooks.errors import MissingCredentials, ServiceUnavailable, WebhookError, WrongCredentials
from billing_webhooks.settings import settings

# An authenticator looks at the raw event and the decoded body and raises if it is not convinced;
# what it returns (what it learned of the sender, e.g. the portal's installation) goes to the
# function's effect.
Authenticator = Callable[[dict[str, Any], dict[str, Any]], Any]


def _secret(env_var: str) -> Any:
    """The JSON secret named by `env_var`, cached for SECRETS_CACHE_SECONDS."""
    from billing_webhooks.secrets import json_secret

    try:
        return json_secret(getattr(settings(), env_var.lower()))
    except Exception as exc:  # any failure to read our own secret is ours, not the sender's
        raise ServiceUnavailable(f"Credentials cannot be checked right now ({exc.__class__.__name__}).") from None


def matches_any(presented: str, active: Iterable[str]) -> bool:
    """Constant-time: every active token is compared, whichever matches."""
    given = presented.encode()
    results = [hmac.compare_digest(given, str(token).encode()) for token in active]
    return any(results)


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

    from billing_webhooks.decoding import lowered_headers, raw_body
    from billing_webhooks.rescue import received_epoch, rescued

    headers = lowered_headers(event)
    timestamp = headers.get("x-webhook-timestamp", "").strip()
    presented = [part.strip() for part in headers.get("x-webhook-signature", "").split(",") if part.strip()]
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12) or not presented:
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
    return settings().signatures_required


def billing_secret_ids() -> list[str]:
    """The secrets billing_credentials reads on every delivery."""
    names = ["BILLING_SECRET_ID", "BILLING_SIGNING_SECRET_ID"] if _signatures_required() else ["BILLING_SECRET_ID"]
    return [getattr(settings(), name.lower()) for name in names]


# What the pipeline may fetch ahead, while it makes its DynamoDB client on a cold start.
billing_credentials.secret_ids = billing_secret_ids


# One text for every portal refusal: a known and an unknown portal must not answer differently.
PORTAL_REFUSED = "The application token is not valid for this portal."
# Bitrix24's member_id is 32 hex digits; far longer is no portal of Bitrix24's (and past 2 KiB
# not even a key DynamoDB can look up).
MAX_MEMBER_ID_LENGTH = 128


def _portal_auth(event: dict[str, Any], payload: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    """(auth, member_id, the SHA-256 of auth.application_token)."""
    auth = payload.get("auth")
    auth = auth if isinstance(auth, dict) else {}
    token, member_id = auth.get("application_token"), auth.get("member_id")
    tokens = [token] if isinstance(token, str) and token else []
    digests = presented_digests(event, tokens)
    if not digests or not isinstance(member_id, str) or not member_id:
        raise MissingCredentials("auth[member_id] and auth[application_token] are required.")
    if len(member_id) > MAX_MEMBER_ID_LENGTH:
        raise WrongCredentials(PORTAL_REFUSED)
    return auth, member_id, digests[-1]


def _installed_by_hand(member_id: str) -> str | None:
    """The portal's token in the fallback secret (a portal installed by hand), if it is there."""
    portals = _secret("BITRIX24_SECRET_ID")
    token = portals.get(member_id) if isinstance(portals, dict) else None
    return token if isinstance(token, str) and token else None


def _stored_portal_token(event: dict[str, Any], payload: dict[str, Any], *, accept_uninstalled: bool) -> dict[str, Any] | None:
    """`auth.application_token` must be the one stored for the portal's `member_id`.

    A portal in the fallback secret (installed by hand) is checked there, whatever record an
    install may have written for its member_id: the operator's word wins. Any other portal is
    checked against its installation record. Returns the installation the event may change."""
    from billing_webhooks import installations

    _, member_id, digest = _portal_auth(event, payload)
    by_hand = _installed_by_hand(member_id)
    if by_hand is not None:
        if not digest_matches_any([digest], [by_hand]):
            raise WrongCredentials(PORTAL_REFUSED)
        return None
    installation = installations.get(member_id)
    statuses = {installations.INSTALLED, installations.UNINSTALLED} if accept_uninstalled else {installations.INSTALLED}
    # Compared for an unknown portal too, so that timing does not tell which portals we know.
    if not installations.digest_matches(installation or {}, digest) or (installation or {}).get("status") not in statuses:
        raise WrongCredentials(PORTAL_REFUSED)
    return installation


def portal_application_token(event: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any] | None:
    """Any event of an installed portal: its stored token, and the app still installed."""
    return _stored_portal_token(event, payload, accept_uninstalled=False)


def _portal_secret_ids() -> list[str]:
    return [settings().bitrix24_secret_id]


# The fallback map is read on every portal event: fetched ahead on a cold start, as billing's secrets.
portal_application_token.secret_ids = _portal_secret_ids


def portal_uninstall_token(event: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any] | None:
    """ONAPPUNINSTALL has no proof but the stored token; once uninstalled, a redelivery is still
    recognised (answered as a duplicate) rather than refused."""
    return _stored_portal_token(event, payload, accept_uninstalled=True)


portal_uninstall_token.secret_ids = _portal_secret_ids


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
        confirm = lambda first_seen=True: PortalConfirmation.model_validate(parcel["sender"])  # noqa: E731
    else:
        access_token = auth.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise MissingCredentials("auth[access_token] is required to confirm the installation with the portal.")
        url = portal.app_info_url(auth.get("domain"), auth.get("client_endpoint"))  # refuses before any call

        def confirm(first_seen: bool = True) -> PortalConfirmation:
            info = _confirmed_app_info(portal.app_info(url, access_token))
            if first_seen:  # a member_id with a record was confirmed when it first came, on its domain
                _member_id_confirmed(auth, member_id)
            return PortalConfirmation(info=info, handlers=bindings.handler_urls(event))
    domain = str(auth.get("domain") or "").strip().lower()
    if parcel is None:
        portal.check_server_endpoint(auth.get("server_endpoint"))
    if _installed_by_hand(member_id) is not None:
        raise WrongCredentials("This portal is installed by hand (the fallback secret): remove it there first.")
    try:
        installation = installations.get(member_id)
    except ServiceUnavailable as error:
        # Storage is down and the delivery will be parked: ask the portal now, while we hold the
        # access token, so that its replay needs no token (a refusal answers as it would have).
        error.sender = confirm(first_seen=True).model_dump(mode="json")
        raise
    installed = installation is not None and installation.get("status") == installations.INSTALLED
    if known_portal and not installed:
        raise WrongCredentials("This portal has no installation of the app to update.")
    # A member_id once seen on a domain stays there, installed or not: only an operator moves it
    # (docs/operations.md), never an event whose domain anyone may write.
    if installation is not None and installation.get("domain") != domain:
        raise WrongCredentials("This portal is installed on another domain.")
    return confirm(first_seen=installation is None)


def _member_id_confirmed(auth: dict[str, Any], member_id: str) -> None:
    """The event's member_id must be the one Bitrix24's OAuth server names for the event's tokens
    (app.info confirms the domain, not the member_id). Needs the app's client id and secret in
    Bitrix24AppCredentials; without them the install is believed on app.info alone, and counted."""
    from aws_lambda_powertools.metrics import MetricUnit

    from billing_webhooks import portal
    from billing_webhooks.observability import logger, metrics

    credentials = _secret("BITRIX24_APP_CREDENTIALS_ID")
    client_id, client_secret = (credentials.get(name) if isinstance(credentials, dict) else None
                                for name in ("client_id", "client_secret"))
    refresh_token = auth.get("refresh_token")
    unverifiable = [reason for reason, missing in (
        ("Bitrix24AppCredentials holds no client id and secret",
         not (isinstance(client_id, str) and client_id and isinstance(client_secret, str) and client_secret)),
        # Real installs do not always carry one (the PHP SDK's own fixture has none): never a refusal.
        ("the event carries no refresh_token", not (isinstance(refresh_token, str) and refresh_token)),
    ) if missing]
    if unverifiable:
        metrics.add_metric(name="MemberUnverified", unit=MetricUnit.Count, value=1)
        logger.warning("member_id not verified", extra={"why": unverifiable[0]})
        return
    owner = portal.token_owner(auth.get("server_endpoint"), refresh_token, client_id, client_secret)
    endpoint_host = urlsplit(str(owner.get("client_endpoint") or "")).hostname or ""
    if owner["member_id"] != member_id or endpoint_host.lower() != str(auth.get("domain") or "").strip().lower():
        raise WrongCredentials("The event's tokens belong to another portal than its member_id and domain say.")


def _confirmed_app_info(info: Any) -> Any:
    app_code = settings().bitrix24_app_code
    if not app_code:
        raise WebhookError("Installs cannot be confirmed: BITRIX24_APP_CODE is not configured.")
    if info.CODE != app_code or not info.INSTALLED:
        raise WrongCredentials("The portal does not confirm that this app is installed.")
    return info


def portal_confirms_install(event: dict[str, Any], payload: dict[str, Any]) -> Any:
    return _confirmed_by_portal(event, payload, known_portal=False)


def portal_confirms_update(event: dict[str, Any], payload: dict[str, Any]) -> Any:
    return _confirmed_by_portal(event, payload, known_portal=True)
