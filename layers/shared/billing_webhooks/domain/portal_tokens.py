"""A portal's OAuth tokens: kept sealed (data/tokens.py, data/sealing.py), refreshed only when the
access token has expired (or the portal says `expired_token`), one refresh at a time per portal
however many callers race: the caller whose claim on the read version wins refreshes, the others
wait for its write and use the rotated token. A refresh token works once, so a second refresh of
the same pair would lose the portal.

The tokens never leave this module but as an `Access` (its token hidden from repr) for one call.
"""

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from aws_lambda_powertools.metrics import MetricUnit

from billing_webhooks import clock
from billing_webhooks.data import bitrix24, sealing, secrets, tokens
from billing_webhooks.domain.portals import TOKENS_IN_DOUBT
from billing_webhooks.errors import PortalUnavailable, ServiceUnavailable
from billing_webhooks.models.base import utc_timestamp
from billing_webhooks.observability import logger, metrics
from billing_webhooks.settings import settings
from billing_webhooks.wire.credentials import token_sha256

EARLY_SECONDS = 60  # an access token this close to its end is refreshed first: it would expire in flight
# A claimed refresh not written by then is given up (its claimer died): others may claim. Past the
# OAuth timeout (20 s) and the rotated pair's write with its retries.
LEASE_SECONDS = 60
WRITE_ATTEMPTS = 5  # the rotated pair's write: it exists nowhere else, so a failed one is tried again
IN_DOUBT = TOKENS_IN_DOUBT  # a refresh's answer was lost, and the pair it presented is spent now
WAIT_STEP_SECONDS = 0.1
ACCESS_TOKEN_SECONDS = 3600  # Bitrix24's access tokens, when an answer does not say
PENDING_PURPOSE = "install-refresh-token"


class NoToken(Exception):
    """No tokens are kept for this portal: installed before the token store, or never vouched for."""


@dataclass(frozen=True)
class Access:
    member_id: str
    version: int  # of the kept pair it came from: a refusal of it asks for a newer one
    token: str = field(repr=False)


def _context(member_id: str) -> dict[str, str]:
    return {"member_id": member_id, "purpose": "portal-tokens"}


def _pending_context(member_id: str) -> dict[str, str]:
    """An install's refresh token kept to be vouched for: the webhook functions may open these
    (template.yaml: kms:Decrypt under this purpose alone), never a kept pair."""
    return {"member_id": member_id, "purpose": PENDING_PURPOSE}


def _expiry(answer: dict[str, Any], now: float) -> int:
    for name, base in (("expires", 0), ("expires_in", int(now))):
        value = str(answer.get(name) or "")
        if value.isascii() and value.isdigit() and len(value) <= 12:
            return base + int(value)
    return int(now) + ACCESS_TOKEN_SECONDS


def _sealed_pair(member_id: str, answer: dict[str, Any]) -> str:
    pair = {"access_token": answer["access_token"], "refresh_token": answer["refresh_token"]}
    return sealing.seal(json.dumps(pair).encode(), settings().token_store_key_id, _context(member_id))


def keep_issued(member_id: str, answer: dict[str, Any], server_endpoint: str, now: float | None = None) -> bool:
    """The pair Bitrix24's OAuth server just issued for this portal (an install's check): kept,
    or counted and logged (never the tokens) when it cannot be; the delivery goes on either way."""
    now = clock.epoch() if now is None else now
    try:
        tokens.put_issued(
            member_id,
            _sealed_pair(member_id, answer),
            _expiry(answer, now),
            server_endpoint,
            utc_timestamp(datetime.fromtimestamp(now, UTC)),
        )
    except Exception as exc:  # KMS or DynamoDB down: the install stands; the portal is synced once reinstalled
        metrics.add_metric(name="TokensNotKept", unit=MetricUnit.Count, value=1)
        logger.error("portal tokens not kept", extra={"member_id": member_id, "error": exc.__class__.__name__})
        return False
    return True


def keep_unvouched(member_id: str, refresh_token: str, server_endpoint: str) -> bool:
    """An install's refresh token, kept sealed beside any pair while it cannot be vouched for (the
    OAuth server or the portal did not answer): the replay or the licence sync vouches for the
    install with it later (vouch_later)."""
    try:
        sealed = sealing.seal(refresh_token.encode(), settings().token_store_key_id, _pending_context(member_id))
        tokens.put_unvouched(member_id, sealed, server_endpoint, utc_timestamp(clock.now()))
    except Exception as exc:
        metrics.add_metric(name="TokensNotKept", unit=MetricUnit.Count, value=1)
        logger.error("portal tokens not kept", extra={"member_id": member_id, "error": exc.__class__.__name__})
        return False
    return True


REFRESH_TOKEN_SECONDS = 180 * 86400  # how long Bitrix24's refresh tokens live


def refused_before(refresh_token: str) -> bool:
    """Bitrix24's OAuth server refused this very refresh token before (the store down: not known)."""
    try:
        return tokens.refused_before(token_sha256(refresh_token))
    except ServiceUnavailable:
        return False


def remember_refused(refresh_token: str, error: str) -> None:
    """A refresh token refused stays refused (each works once): remembered as long as it could
    have lived, so that a stranger's made-up one costs one request with the vendor's credentials."""
    expires_at = int(clock.epoch()) + REFRESH_TOKEN_SECONDS
    try:
        tokens.remember_refused(token_sha256(refresh_token), error, expires_at)
    except ServiceUnavailable:
        logger.warning("a refused refresh token could not be remembered")


def needs_mending(member_id: str) -> bool:
    """No usable pair is kept: none, refused, in doubt, or waiting to be vouched for."""
    item = tokens.flags(member_id)
    return item is None or any(item.get(name) for name in ("refused", "in_doubt_since", "vouch_pending"))


def vouch_pending(member_id: str) -> bool:
    """An install's refresh token waits here to be vouched for."""
    item = tokens.flags(member_id)
    return item is not None and bool(item.get("vouch_pending"))


def vouch_later(member_id: str, domain: str) -> str | None:
    """An install kept unvouched, vouched for now with the refresh token it carried: when
    Bitrix24's OAuth server names this member_id and domain for it, the pair it issued is kept in
    place of any other, and its access token returned (for this one call). None when no such token
    waits, or another caller is refreshing; TokenRefused when the server refuses it (dropped,
    never sent again; the pair beside it untouched); PortalUnavailable when it cannot be asked."""
    item = tokens.pending(member_id)
    if item is None or not item.get("pending_sealed"):
        return None
    now, claimed = clock.epoch(), int(item["version"]) + 1
    if not tokens.claim_refresh(member_id, int(item["version"]), int(now), int(now) + LEASE_SECONDS):
        return None
    try:
        refresh_token = _open_pending(member_id, item["pending_sealed"])
        client_id, client_secret = _app_credentials()
        answer = bitrix24.refresh_tokens(item["server_endpoint"], refresh_token, client_id, client_secret)
    except bitrix24.TokenRefused:
        tokens.drop_pending(member_id, claimed)
        raise
    except BaseException:
        tokens.release(member_id, claimed)
        raise
    host = urlsplit(str(answer.get("client_endpoint") or "")).hostname or ""
    if answer["member_id"] != member_id or host.lower() != domain.lower():
        tokens.drop_pending(member_id, claimed)
        raise bitrix24.TokenRefused("The install's tokens belong to another portal.", "another portal")
    metrics.add_metric(name="PortalTokensRefreshed", unit=MetricUnit.Count, value=1)
    _keep_rotated(member_id, claimed, answer, now, vouching=True)
    return str(answer["access_token"])


def _open_pending(member_id: str, sealed: str) -> str:
    try:
        return sealing.open_sealed(sealed, _pending_context(member_id)).decode()
    except Exception as exc:  # KMS unreachable or refusing
        raise ServiceUnavailable(
            f"The install's kept refresh token cannot be opened right now ({exc.__class__.__name__})."
        ) from None


def _open(item: dict[str, Any]) -> dict[str, str]:
    try:
        context = _context(item["member_id"])
        if "data_key" in item:  # sealed the former way (data/sealing.py): read until next written
            return json.loads(sealing.open_former(item, context))
        return json.loads(sealing.open_sealed(item["sealed"], context))
    except Exception as exc:  # KMS unreachable or refusing: nothing to do with the portal
        raise ServiceUnavailable(
            f"The portal's tokens cannot be opened right now ({exc.__class__.__name__})."
        ) from None


def _app_credentials() -> tuple[str, str]:
    try:
        credentials = secrets.json_secret(settings().bitrix24_app_credentials_id)
    except Exception as exc:
        raise ServiceUnavailable(
            f"The app's credentials cannot be read right now ({exc.__class__.__name__})."
        ) from None
    values = tuple(
        credentials.get(name) if isinstance(credentials, dict) else None for name in ("client_id", "client_secret")
    )
    if not all(isinstance(value, str) and value for value in values):
        raise ServiceUnavailable("Bitrix24AppCredentials holds no client id and secret: no token can be refreshed.")
    return values  # type: ignore[return-value]


def access(member_id: str, *, refused: Access | None = None) -> Access:
    """An access token for the portal: the kept one while it is valid (and is not `refused`, the
    one the portal just called expired), else a refreshed one, refreshed once however many ask.
    bitrix24.TokenRefused when Bitrix24 refuses the refresh (`invalid_grant`: never again until a
    reinstall; `PAYMENT_REQUIRED`); NoToken; ServiceUnavailable; PortalUnavailable."""
    waited_until = None
    while True:
        item = tokens.get(member_id)
        if item is None or "access_expires_at" not in item:  # none, or only an install's token to vouch with
            raise NoToken(member_id)
        if item.get("refused"):
            raise bitrix24.TokenRefused(f"Bitrix24 refused this portal's tokens ({item['refused']}).", item["refused"])
        now = clock.epoch()
        leased = int(item.get("refreshing_until") or 0) >= now
        stale = refused is not None and refused.version >= int(item["version"])
        if not leased and not stale and int(item["access_expires_at"]) > now + EARLY_SECONDS:
            return Access(member_id, int(item["version"]), _open(item)["access_token"])
        if not leased and tokens.claim_refresh(member_id, int(item["version"]), int(now), int(now) + LEASE_SECONDS):
            return _refresh(item, int(item["version"]) + 1, now)
        # Another caller holds the refresh: wait for its write, then use what it wrote.
        waited_until = waited_until or now + LEASE_SECONDS + 1
        if now > waited_until:
            raise PortalUnavailable("Another refresh of this portal's tokens did not finish in time.")
        time.sleep(WAIT_STEP_SECONDS)


def _refreshed_answer(item: dict[str, Any], claimed: int) -> dict[str, Any]:
    """The OAuth server's answer to a refresh of the kept pair, under the claim `claimed`; the claim
    given up on any failure, with what the failure says of the pair."""
    member_id = item["member_id"]
    try:
        pair = _open(item)
        client_id, client_secret = _app_credentials()
        answer = bitrix24.refresh_tokens(item["server_endpoint"], pair["refresh_token"], client_id, client_secret)
    except bitrix24.TokenRefused as refusal:
        # invalid_grant: the refresh token is revoked or expired, and stays so; after a lost answer,
        # that answer rotated it (tokens in doubt: only the portal's administrator can mend it).
        # PAYMENT_REQUIRED: the pair is still good for when the app is paid again.
        doubted = refusal.error == bitrix24.INVALID_GRANT and item.get("in_doubt_since")
        refused = IN_DOUBT if doubted else refusal.error if refusal.error == bitrix24.INVALID_GRANT else None
        tokens.release(member_id, claimed, refused=refused)
        if doubted:
            raise bitrix24.TokenRefused("A refresh's answer was lost and its pair is spent.", IN_DOUBT) from None
        raise
    except bitrix24.AnswerLost:
        # Bitrix24 may have rotated the pair and we never saw the new one: said, not hidden. The next
        # refresh tells (the old token taken: nothing lost; refused: tokens in doubt).
        tokens.release(member_id, claimed, doubt_since=utc_timestamp(clock.now()))
        logger.warning("a token refresh's answer was lost", extra={"member_id": member_id})
        raise
    except BaseException:
        tokens.release(member_id, claimed)
        raise
    metrics.add_metric(name="PortalTokensRefreshed", unit=MetricUnit.Count, value=1)
    return answer


def _keep_rotated(member_id: str, claimed: int, answer: dict[str, Any], now: float, vouching: bool = False) -> None:
    """The rotated pair, kept before it is used: the old one is spent, so this write is the pair's
    only copy. Tried again on failure; a lapsed claim (a reinstall wrote a newer pair) is let be."""
    sealed = _sealed_pair(member_id, answer)
    for attempt in range(WRITE_ATTEMPTS):
        try:
            written = tokens.put_refreshed(
                member_id,
                claimed,
                sealed,
                _expiry(answer, now),
                utc_timestamp(datetime.fromtimestamp(now, UTC)),
                vouching=vouching,
            )
        except ServiceUnavailable:
            if attempt == WRITE_ATTEMPTS - 1:
                metrics.add_metric(name="TokensNotKept", unit=MetricUnit.Count, value=1)
                logger.error("rotated portal tokens not kept", extra={"member_id": member_id})
                raise
            time.sleep(0.2 * 2**attempt)
            continue
        if not written:
            logger.warning("refreshed tokens not kept: the claim lapsed", extra={"member_id": member_id})
        return


def _refresh(item: dict[str, Any], claimed: int, now: float) -> Access:
    member_id = item["member_id"]
    answer = _refreshed_answer(item, claimed)
    if answer["member_id"] != member_id:
        tokens.release(member_id, claimed)
        raise PortalUnavailable("Bitrix24's OAuth server named another portal for these tokens.")
    _keep_rotated(member_id, claimed, answer, now)
    return Access(member_id, claimed + 1, answer["access_token"])
