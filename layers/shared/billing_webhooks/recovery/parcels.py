"""Deliveries we could not store, kept instead of lost.

Bitrix24 never redelivers an event, so a delivery answered 503 is gone unless we keep it. When a
step after decoding fails on our side (DynamoDB down or throttled after boto3's retries, a bug),
the pipeline parks the delivery on the encrypted rescue queue before it answers 503:
the body, content type, route, received time and the reason, and never a secret. Credentials
travel only as SHA-256 digests (tokens are 128+ random bits: a digest cannot be turned back into
one), and Bitrix24's tokens are cut out of the body. ReplayFunction (recovery/replay.py; `make replay` locally) hands
each parcel back to the function that parked it, which runs the same pipeline again and checks
the digests where it checked the tokens.

Every parcel is signed (HMAC-SHA256 with a key from RescueSigningSecret, which only the webhook
functions may read) when it is parked, and a replayed event is believed only with that signature:
a principal that may invoke a function directly, or send to the queue, cannot forge a delivery.

One exception, for the functions that must call the portal again on replay (install and update
bind the portal's events, domain/bindings.py): their parcel keeps the event's OAuth access token, sealed
with a KMS key that only those functions may use, bound to the portal's member_id, and with its
expiry (Bitrix24's access tokens live an hour): a replay after that gets no token back.
"""

import base64
import hmac
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode

from billing_webhooks import clock
from billing_webhooks.data import aws, sealing
from billing_webhooks.data.secrets import json_secret
from billing_webhooks.errors import ServiceUnavailable, WrongCredentials
from billing_webhooks.models.base import json_number, utc_timestamp
from billing_webhooks.settings import settings
from billing_webhooks.wire.credentials import portal_auth_of, presented_billing_tokens, token_sha256
from billing_webhooks.wire.decoding import FORM, form_key_path, lowered_headers, media_type, raw_body
from billing_webhooks.wire.delivery import parcel_received_epoch

# Headers a replay needs (the signature is an HMAC of the body, not a key); every other header,
# Authorization and X-Webhook-Token included, stays behind.
# x-forwarded-proto: the scheme the stack was called with, for the URLs a replayed install binds.
KEPT_HEADERS = frozenset(
    {"content-type", "user-agent", "x-webhook-timestamp", "x-webhook-signature", "x-forwarded-proto"}
)
# Bitrix24's tokens in `auth`: the application token travels as its digest, the others not at all.
PORTAL_TOKENS = frozenset({"application_token", "access_token", "refresh_token"})
SECRET_QUERY_PARAMETERS = frozenset({"token"})


def _signing_keys() -> list[str]:
    try:
        secret = json_secret(settings().rescue_signing_secret_id)
    except Exception as exc:  # ours to fix, not the parcel's fault
        raise ServiceUnavailable(f"Parcels cannot be signed or checked right now ({exc.__class__.__name__}).") from None
    keys = [value for value in secret.values() if isinstance(value, str) and value] if isinstance(secret, dict) else []
    if not keys:
        raise ServiceUnavailable("RescueSigningSecret holds no key.")
    return keys


def _mac(key: str, found: dict[str, Any]) -> str:
    unsigned = {name: value for name, value in found.items() if name != "signature"}
    text = json.dumps(unsigned, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return "sha256=" + hmac.new(key.encode(), text.encode(), "sha256").hexdigest()


def sign(found: dict[str, Any]) -> dict[str, Any]:
    """The parcel with its signature, made with the secret's first active key."""
    return {**found, "signature": _mac(_signing_keys()[0], found)}


def verify(parcel: dict[str, Any]) -> None:
    """A replayed delivery's parcel must be signed by one of the active keys; else 403."""
    presented = str(parcel.get("signature") or "")
    expected = [_mac(key, parcel) for key in _signing_keys()]
    if not any([hmac.compare_digest(presented.encode(), mac.encode()) for mac in expected]):
        raise WrongCredentials("The replayed parcel is not signed by this stack.")


def _portal_form_token(key: str) -> bool:
    """Whether a form key names (or nests under) a portal token, as the decoder reads it."""
    path = form_key_path(key)
    return len(path) > 1 and path[0] == "auth" and path[1] in PORTAL_TOKENS


def _without_portal_tokens(body: bytes, kind: str, payload: dict[str, Any]) -> bytes:
    auth = found if isinstance(found := payload.get("auth"), dict) else {}  # as sent, nothing derived
    if not PORTAL_TOKENS & auth.keys():
        return body  # nothing to cut: the body is kept byte for byte (a billing signature covers it)
    if kind == FORM:  # the token fields cut out, every other byte kept as sent (no re-encoding growth)
        return b"&".join(
            field
            for field in body.split(b"&")
            if not _portal_form_token(unquote_plus(field.partition(b"=")[0].decode()))
        ).strip(b"&")
    cleaned = {**payload, "auth": {key: value for key, value in auth.items() if key not in PORTAL_TOKENS}}
    return json.dumps(cleaned, ensure_ascii=False, default=json_number).encode()


def _presented_digests(event: dict[str, Any], payload: dict[str, Any]) -> list[str]:
    """Digests of every credential the sender presented: billing tokens and the portal's token."""
    tokens = presented_billing_tokens(event)
    portal_token = portal_auth_of(payload).get("application_token")
    if isinstance(portal_token, str):
        tokens.append(portal_token)
    return [token_sha256(token) for token in tokens]


ACCESS_TOKEN_SECONDS = 3600  # Bitrix24's OAuth access tokens, when the event does not say


def _access_token_expiry(auth: dict[str, Any], received: datetime) -> int:
    for name, base in (("expires", 0), ("expires_in", int(received.timestamp()))):
        value = str(auth.get(name) or "")
        if value.isascii() and value.isdigit() and len(value) <= 12:
            return base + int(value)
    return int(received.timestamp()) + ACCESS_TOKEN_SECONDS


def _seal_access_token(auth: dict[str, Any], received: datetime) -> str | None:
    token = auth.get("access_token")
    if not isinstance(token, str) or not token:
        return None
    sealed = json.dumps({"access_token": token, "expires": _access_token_expiry(auth, received)}).encode()
    return sealing.seal(sealed, settings().portal_token_key_id, {"member_id": str(auth.get("member_id"))})


def with_sealed_access_token(found: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """The replayed payload with its sealed access token back in `auth`, while the token is still
    valid; the payload as parked otherwise."""
    auth = portal_auth_of(payload)
    if not found.get("sealed_access_token") or not auth:
        return payload
    sealed = json.loads(sealing.open_sealed(found["sealed_access_token"], {"member_id": str(auth.get("member_id"))}))
    if sealed["expires"] <= clock.epoch():
        return payload
    return {**payload, "auth": {**auth, "access_token": sealed["access_token"]}}


def parcel(
    event: dict[str, Any],
    payload: dict[str, Any],
    function_name: str,
    reason: str,
    sender: dict[str, Any] | None = None,
    keep_access_token: bool = False,
) -> dict[str, Any]:
    """What the rescue queue keeps of a delivery: everything a replay needs, no secret in the clear."""
    headers = lowered_headers(event)
    kind = media_type(headers) or "application/json"
    body = _without_portal_tokens(raw_body(event), kind, payload)
    query = [
        (k, v)
        for k, v in parse_qsl(event.get("rawQueryString") or "", keep_blank_values=True)
        if k not in SECRET_QUERY_PARAMETERS
    ]
    context = event.get("requestContext") or {}
    received_ms = context.get("timeEpoch")
    received = datetime.fromtimestamp(received_ms / 1000, UTC) if received_ms else clock.now()
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    found = {
        "route": event.get("routeKey") or f"POST {event.get('rawPath', '')}",
        "function": function_name,
        "received_at": utc_timestamp(received),
        "reason": reason,
        "request_id": context.get("requestId"),
        # Where it was called (API Gateway's domain and stage): a replayed install binds those URLs.
        "called_at": {name: context[name] for name in ("domainName", "stage") if context.get(name)},
        "content_type": kind,
        "headers": {name: value for name, value in headers.items() if name in KEPT_HEADERS},
        "query": urlencode(query),
        "body": text,
        "body_base64": encoded,
        "credential_sha256": _presented_digests(event, payload),
    }
    if sender is not None:
        found["sender"] = sender
    auth = portal_auth_of(payload)
    if keep_access_token and auth:
        try:
            sealed = _seal_access_token(auth, received)
        except Exception:  # KMS failing too: the delivery is parked all the same, its bind given up
            sealed = None
        if sealed:
            found["sealed_access_token"] = sealed
    return found


def queue() -> Any:
    """Made on first use: only a failing delivery parks."""
    return aws.client("sqs")


def park(found: dict[str, Any]) -> str:
    """Sign the parcel and send it to the rescue queue; the SQS message id. A parcel that cannot be
    signed (Secrets Manager failing too) is parked unsigned all the same: the replay moves it to
    the dead-letter queue for an operator instead of running it."""
    try:
        found = sign(found)
    except ServiceUnavailable:
        pass
    return queue().send_message(
        QueueUrl=settings().rescue_queue_url,
        MessageBody=json.dumps(found, ensure_ascii=False, separators=(",", ":")),
        MessageAttributes={
            "route": {"DataType": "String", "StringValue": found["route"]},
            "reason": {"DataType": "String", "StringValue": found["reason"][:256]},
        },
    )["MessageId"]


def replay_event(found: dict[str, Any]) -> dict[str, Any]:
    """The HTTP API event the function runs again: the parked request, plus the parcel itself."""
    method, _, path = found["route"].partition(" ")
    return {
        "version": "2.0",
        "routeKey": found["route"],
        "rawPath": path,
        "rawQueryString": found.get("query", ""),
        "headers": dict(found.get("headers") or {}),
        "requestContext": {
            "http": {"method": method, "path": path},
            "requestId": found.get("request_id"),
            **dict(found.get("called_at") or {}),
            "timeEpoch": int(parcel_received_epoch(found) * 1000),
        },
        "body": found["body"],
        "isBase64Encoded": bool(found.get("body_base64")),
        "rescued": found,
    }
