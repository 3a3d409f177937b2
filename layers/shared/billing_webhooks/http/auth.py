"""Step 2 of the pipeline: who sent this? Refuse before trusting anything in the body.

An authenticator is a small object: called with the delivery, it raises unless convinced and
returns what it learned of the sender (the portal's installation, the portal's own word), which
the function's effect receives; `secret_ids()` names the secrets it reads on every delivery, so
that the pipeline fetches them ahead on a cold start. Secrets live in Secrets Manager, read once
per container per SECRETS_CACHE_SECONDS (data/secrets.py). Every comparison is constant-time; no
token is ever logged.
"""

import hmac
from collections.abc import Iterable
from typing import Any, Protocol

from billing_webhooks.data import secrets
from billing_webhooks.errors import MissingCredentials, ServiceUnavailable, WrongCredentials
from billing_webhooks.settings import settings
from billing_webhooks.wire.credentials import presented_billing_tokens, token_sha256
from billing_webhooks.wire.decoding import lowered_headers, raw_body
from billing_webhooks.wire.delivery import Delivery


class Authenticator(Protocol):
    def __call__(self, delivery: Delivery) -> Any: ...

    def secret_ids(self) -> list[str]: ...


def read_secret(secret_id: str) -> Any:
    """Our JSON secret `secret_id`, cached for SECRETS_CACHE_SECONDS."""
    try:
        return secrets.json_secret(secret_id)
    except Exception as exc:  # any failure to read our own secret is ours, not the sender's
        raise ServiceUnavailable(f"Credentials cannot be checked right now ({exc.__class__.__name__}).") from None


def matches_any(presented: str, active: Iterable[str]) -> bool:
    """Constant-time: every active token is compared, whichever matches."""
    given = presented.encode()
    results = [hmac.compare_digest(given, str(token).encode()) for token in active]
    return any(results)


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


class BillingCredentials:
    """Billing: the shared secret as `Authorization: Bearer`, `X-Webhook-Token` or `?token=`,
    against every active secret; and, when BILLING_SIGNATURE=required, an HMAC signature."""

    def secret_ids(self) -> list[str]:
        config = settings()
        return (
            [config.billing_secret_id, config.billing_signing_secret_id]
            if config.signatures_required
            else [config.billing_secret_id]
        )

    def __call__(self, delivery: Delivery) -> None:
        presented = delivery.presented_digests(presented_billing_tokens(delivery.event))
        if not presented:
            raise MissingCredentials("Send the shared secret as 'Authorization: Bearer <token>'.")
        if not digest_matches_any(presented, _active_values(read_secret(settings().billing_secret_id))):
            raise WrongCredentials("The shared secret is not valid.")
        if settings().signatures_required:
            self.check_signature(delivery)

    @staticmethod
    def check_signature(delivery: Delivery) -> None:
        """`X-Webhook-Timestamp` (Unix seconds, within ±5 minutes: a captured delivery cannot be
        replayed later) and `X-Webhook-Signature: sha256=<hex>` (several, comma-separated, while the
        sender rotates) over the raw body, checked against every active signing key."""
        headers = lowered_headers(delivery.event)
        timestamp = headers.get("x-webhook-timestamp", "").strip()
        presented = [part.strip() for part in headers.get("x-webhook-signature", "").split(",") if part.strip()]
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12) or not presented:
            raise MissingCredentials(
                "Sign the body: X-Webhook-Timestamp (Unix seconds) and X-Webhook-Signature: sha256=<hex>."
            )
        # A replay is judged as of when it was received.
        if abs(delivery.received_epoch() - int(timestamp)) > SIGNATURE_TOLERANCE_SECONDS:
            raise WrongCredentials(f"X-Webhook-Timestamp is more than {SIGNATURE_TOLERANCE_SECONDS} s away from now.")
        body = raw_body(delivery.event)
        keys = _active_values(read_secret(settings().billing_signing_secret_id))
        expected = [signature(key, timestamp, body) for key in keys]
        if not any([matches_any(given, expected) for given in presented]):
            raise WrongCredentials("X-Webhook-Signature does not match the body.")


billing_credentials = BillingCredentials()
