"""What a request presents as credentials, and their digests: read by authentication (http/) and
by parking a delivery (recovery/parcels.py), below both."""

import hashlib
from typing import Any
from urllib.parse import parse_qsl

from billing_webhooks.models.base import with_endpoints
from billing_webhooks.wire.decoding import lowered_headers

# Bitrix24's member_id is 32 hex digits; far longer is no portal of Bitrix24's (and past 2 KiB
# not even a key DynamoDB can look up).
MAX_MEMBER_ID_LENGTH = 128


def token_sha256(token: str) -> str:
    # Tokens are 128+ random bits (Bitrix24's, our generated secrets), so a plain hash is enough
    # to make a leaked installation table or rescue queue useless for forging deliveries.
    return hashlib.sha256(token.encode()).hexdigest()


def portal_auth_of(payload: dict[str, Any] | None) -> dict[str, Any]:
    """A Bitrix24 event's `auth` object (its portal and tokens), or {} when it has none; endpoints
    it leaves out derived from its domain, as the model reads them (models/base.with_endpoints)."""
    auth = (payload or {}).get("auth")
    return with_endpoints(auth) if isinstance(auth, dict) else {}


def presented_billing_tokens(event: dict[str, Any]) -> list[str]:
    """Every token the billing sender presented: `Authorization: Bearer`, `X-Webhook-Token`, `?token=`."""
    headers = lowered_headers(event)
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
