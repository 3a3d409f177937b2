"""Step 2 of the pipeline: who sent this? Refuse before trusting anything in the body.

Secrets live in Secrets Manager and are read through Powertools parameters, cached per container
(POWERTOOLS_PARAMETERS_MAX_AGE). Every comparison is constant-time; no token is ever logged.
"""

import hmac
import os
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from billing_webhooks.errors import MissingCredentials, ServiceUnavailable, WrongCredentials

# An authenticator looks at the raw event and the decoded body and raises if it is not convinced.
Authenticator = Callable[[dict[str, Any], dict[str, Any]], None]


def _secret(env_var: str) -> Any:
    from aws_lambda_powertools.utilities import parameters  # first delivery only; then cached

    try:
        return parameters.get_secret(os.environ[env_var], transform="json")
    except Exception as exc:  # any failure to read our own secret is ours, not the sender's
        raise ServiceUnavailable(f"Credentials cannot be checked right now ({exc.__class__.__name__}).") from None


def matches_any(presented: str, active: Iterable[str]) -> bool:
    """Constant-time: every active token is compared, whichever matches."""
    given = presented.encode()
    results = [hmac.compare_digest(given, str(token).encode()) for token in active]
    return any(results)


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


def billing_shared_secret(event: dict[str, Any], payload: dict[str, Any]) -> None:
    """Billing: `Authorization: Bearer`, `X-Webhook-Token` or `?token=`, against every active
    secret (the secret is a JSON object; each of its values is a token, so rotation keeps two)."""
    presented = presented_billing_tokens(event)
    if not presented:
        raise MissingCredentials("Send the shared secret as 'Authorization: Bearer <token>'.")
    secret = _secret("BILLING_SECRET_ID")
    active = [value for value in secret.values() if isinstance(value, str) and value] if isinstance(secret, dict) else []
    if not any([matches_any(token, active) for token in presented]):
        raise WrongCredentials("The shared secret is not valid.")


def portal_application_token(event: dict[str, Any], payload: dict[str, Any]) -> None:
    """Bitrix24: `auth.application_token` must be the one stored for the portal's `member_id`."""
    auth = payload.get("auth")
    auth = auth if isinstance(auth, dict) else {}
    token, member_id = auth.get("application_token"), auth.get("member_id")
    if not isinstance(token, str) or not token or not isinstance(member_id, str) or not member_id:
        raise MissingCredentials("auth[member_id] and auth[application_token] are required.")
    portals = _secret("BITRIX24_SECRET_ID")
    expected = portals.get(member_id) if isinstance(portals, dict) else None
    # Compare even for an unknown portal so that timing does not tell which portals we know.
    if not matches_any(token, [expected if isinstance(expected, str) else ""]) or not expected:
        raise WrongCredentials("The application token is not valid for this portal.")
