"""Step 2 for ONAPPINSTALL and ONAPPUPDATE: the portal's own word.

They bring the token we will trust from now on, so they are believed only when the portal itself,
asked at its own checked address, says our app is installed. A portal's identity (its member_id
on its domain) is bound only when Bitrix24's OAuth server names that member_id and domain for the
event's tokens (`vouched`); an install it cannot vouch for is kept but blocks no vouched one and
earns no licence, and a new application token for a bound portal must be vouched for too. The
whole table, who may do what with which credential, is in docs/security.md.
"""

from typing import Any
from urllib.parse import urlsplit

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import SecretStr

from billing_webhooks.data import bitrix24, installations
from billing_webhooks.domain import bindings, portal_tokens
from billing_webhooks.errors import (
    MissingCredentials,
    PortalUnavailable,
    PortalUnconfirmed,
    ServiceUnavailable,
    WebhookError,
    WrongCredentials,
)
from billing_webhooks.http.auth import read_secret
from billing_webhooks.http.portal_token import installed_by_hand, portal_auth, token_matches
from billing_webhooks.models.bitrix24 import AppInfo, PortalConfirmation
from billing_webhooks.observability import logger, metrics
from billing_webhooks.settings import settings
from billing_webhooks.wire.delivery import Delivery


class PortalConfirms:
    """ONAPPINSTALL / ONAPPUPDATE (`known_portal`): believed once the portal confirms them."""

    def __init__(self, *, known_portal: bool) -> None:
        self.known_portal = known_portal

    def secret_ids(self) -> list[str]:
        return [settings().bitrix24_secret_id]

    def __call__(self, delivery: Delivery) -> PortalConfirmation:
        auth, member_id, digest = portal_auth(delivery)
        if delivery.replay is not None and isinstance(delivery.replay.get("sender"), dict):
            # The portal confirmed it when the delivery arrived; the parcel kept its answer, not its token.
            confirmed = PortalConfirmation.model_validate(delivery.replay["sender"])
            confirm = lambda vouch=True, required=False, administrator=False, domain_bound=False: confirmed  # noqa: E731
        else:
            access_token = auth.get("access_token")
            # Parked for longer than its access token lived (recovery/parcels.py): the refresh token
            # kept when it was parked vouches for it now, and brings a fresh access token.
            ran_out = delivery.is_replay and not (isinstance(access_token, str) and access_token)
            if not ran_out and (not isinstance(access_token, str) or not access_token):
                raise MissingCredentials("auth[access_token] is required to confirm the installation with the portal.")
            # A self-hosted portal (a domain on none of Bitrix24's cloud zones) is called only once
            # Bitrix24's OAuth server names that domain for the event's tokens; anything else
            # wrong with the endpoint is refused here, before any call.
            self_hosted = bitrix24.off_the_cloud(auth.get("domain"), auth.get("client_endpoint"))
            url = bitrix24.app_info_url(auth.get("domain"), auth.get("client_endpoint"), vouched=self_hosted)

            def confirm(
                vouch: bool = True, required: bool = False, administrator: bool = False, domain_bound: bool = False
            ) -> PortalConfirmation:
                if ran_out:
                    fresh = _vouched_with_kept_token(member_id, str(auth.get("domain") or ""))
                    if administrator:
                        _require_administrator(auth, member_id, fresh, self_hosted)
                    return PortalConfirmation(
                        info=_confirmed_app_info(bitrix24.app_info(url, fresh)),
                        handlers=bindings.handler_urls(delivery.event),
                        vouched=True,
                        fresh_access_token=SecretStr(fresh),
                    )
                # A self-hosted domain this member_id is bound to was vouched for already.
                vouched_first = (
                    self_hosted and not domain_bound and _self_hosted_vouched(auth, member_id, delivery.is_replay)
                )
                try:
                    info = _confirmed_app_info(bitrix24.app_info(url, str(access_token)))
                except bitrix24.NoSuchPortal as failure:  # nothing there answers app.info: a made-up portal
                    raise WrongCredentials(
                        f"No Bitrix24 portal answers at the event's domain ({failure.detail})."
                    ) from None
                except bitrix24.TokenRefused:
                    raise
                except PortalUnavailable as failure:  # down or slow: parked and replayed, never dropped
                    _keep_refresh_token(auth, member_id)
                    raise PortalUnconfirmed(f"{failure.detail} Parked: replayed until the portal answers.") from None
                if administrator:  # asked before the OAuth server: an insider's refresh token is never spent
                    _require_administrator(auth, member_id, str(access_token), self_hosted)
                vouched, pending = (
                    _member_id_vouched(auth, member_id, may_wait=not required, replay=delivery.is_replay)
                    if vouch and not vouched_first
                    else (True, False)
                )
                if required and not vouched:
                    raise WrongCredentials(
                        "A reinstall or update that changes the portal's application token must be "
                        "vouched for by Bitrix24's OAuth server (it needs auth[refresh_token] and "
                        "the app's Bitrix24AppCredentials)."
                    )
                return PortalConfirmation(
                    info=info,
                    handlers=bindings.handler_urls(delivery.event),
                    vouched=vouched,
                    vouch_pending=pending,
                )

        domain = str(auth.get("domain") or "").strip().lower()
        if not delivery.is_replay:
            bitrix24.check_server_endpoint(auth.get("server_endpoint"))
        if installed_by_hand(member_id) is not None:
            raise WrongCredentials("This portal is installed by hand (the fallback secret): remove it there first.")
        try:
            installation = installations.get(member_id)
        except ServiceUnavailable:
            # Storage is down and the delivery will be parked: ask the portal now, while we hold the
            # access token, so that its replay needs no token (a refusal answers as it would have).
            delivery.confirmation = confirm(vouch=True, administrator=True).model_dump(mode="json")
            raise
        installed = installation is not None and installation.get("status") == installations.INSTALLED
        if self.known_portal and not installed:
            raise WrongCredentials("This portal has no installation of the app to update.")
        bound = installation is not None and installation.get("vouched") is True
        # A member_id Bitrix24 vouched for on a domain stays there, installed or not: only an
        # operator moves it (docs/operations.md), never an event whose domain anyone may write. One
        # it did not vouch for blocks nothing: a vouched install replaces it.
        if bound and installation is not None and installation.get("domain") != domain:
            raise WrongCredentials("This portal is installed on another domain.")
        token_changes = installation is None or not token_matches(installation, digest)
        # Whoever holds a portal's access token (any of its users: the app's page receives a pair)
        # may not set its application token: a new one must come from a portal administrator
        # (user.admin: Bitrix24 lets only administrators install apps) and, once the portal is
        # bound, be vouched for. A bound identity is checked only when its token changes, or when
        # its kept pair needs mending (refused, in doubt, missing): the event's refresh token,
        # vouched for, renews it.
        mend = (
            bound
            and not token_changes
            and isinstance(auth.get("refresh_token"), str)
            and _pair_needs_mending(member_id)
        )
        return confirm(
            vouch=not bound or token_changes or mend,
            required=bound and token_changes,
            administrator=token_changes,
            domain_bound=bound,  # on this domain: checked above
        )


portal_confirms_install = PortalConfirms(known_portal=False)
portal_confirms_update = PortalConfirms(known_portal=True)


def _self_hosted_vouched(auth: dict[str, Any], member_id: str, replay: bool) -> bool:
    """A self-hosted portal's domain vouched for by Bitrix24's OAuth server before it is called
    at all (its answer names the member_id and this domain); refused when it cannot be."""
    vouched, _ = _member_id_vouched(auth, member_id, may_wait=False, replay=replay)
    if not vouched:
        raise WrongCredentials(
            f"{str(auth.get('domain'))[:253]!r} is on none of Bitrix24's cloud zones: a self-hosted portal "
            "installs once Bitrix24's OAuth server vouches for it (the event needs its auth[refresh_token], "
            "and Bitrix24AppCredentials the app's client id and secret)."
        )
    return True


def _require_administrator(auth: dict[str, Any], member_id: str, access_token: str, vouched: bool = False) -> None:
    """The event's user administers the portal, by the portal's own word (`user.admin`); else
    refused: an ordinary user's token (any user who opens the app has one) sets no app token."""
    try:
        administrator = bitrix24.is_administrator(
            auth.get("domain"), auth.get("client_endpoint"), access_token, vouched=vouched
        )
    except bitrix24.TokenRefused:
        raise WrongCredentials("The portal refused the event's access token (user.admin).") from None
    except PortalUnavailable as failure:  # parked as app.info's silence is, its refresh token kept
        _keep_refresh_token(auth, member_id)
        raise PortalUnconfirmed(f"{failure.detail} Parked: replayed until the portal answers.") from None
    if not administrator:
        metrics.add_metric(name="TokenChangeByNonAdministrator", unit=MetricUnit.Count, value=1)
        raise WrongCredentials(
            "Only a portal administrator may change the app's application token: the event's access "
            "token is an ordinary user's (user.admin answered false)."
        )


def _keep_refresh_token(auth: dict[str, Any], member_id: str) -> None:
    """An event parked before it was vouched for keeps its refresh token here, sealed (the parcel
    never holds one): the replay, or the licence sync, vouches with it."""
    refresh_token = auth.get("refresh_token")
    if isinstance(refresh_token, str) and refresh_token:
        portal_tokens.keep_unvouched(member_id, refresh_token, str(auth.get("server_endpoint") or ""))


def _vouched_with_kept_token(member_id: str, domain: str) -> str:
    """The refresh token kept when this install or update was parked, vouched for now: a fresh
    access token once Bitrix24's OAuth server names this member_id and domain for it. Bitrix24
    never resends an install, so a parked one is never refused for want of a token."""
    if not portal_tokens.vouch_pending(member_id):
        raise MissingCredentials("The parked delivery's access token ran out, and no refresh token of it is kept.")
    try:
        fresh = portal_tokens.vouch_later(member_id, domain)
    except bitrix24.TokenRefused:
        raise WrongCredentials("Bitrix24's OAuth server refused the refresh token the delivery carried.") from None
    if fresh is None:
        raise PortalUnavailable("Another refresh of this portal's tokens is under way.")  # the next replay
    metrics.add_metric(name="MemberVouchedLater", unit=MetricUnit.Count, value=1)
    return fresh


def _pair_needs_mending(member_id: str) -> bool:
    """The portal's kept pair is refused, in doubt, waiting to be vouched for, or missing."""
    try:
        return portal_tokens.needs_mending(member_id)
    except ServiceUnavailable:
        return False  # the store is down: the event is parked anyway at its write


def _member_id_vouched(
    auth: dict[str, Any], member_id: str, may_wait: bool = True, replay: bool = False
) -> tuple[bool, bool]:
    """(vouched, pending): whether Bitrix24's OAuth server names the event's member_id and domain
    for its tokens (app.info confirms the domain, not the member_id). Not vouched when it cannot be
    asked: no refresh token in the event, or no client id and secret in Bitrix24AppCredentials
    (counted); refused when it names another portal or refuses the token. Pending (`may_wait`)
    when the server is down or its answer never came: the refresh token is kept sealed and the
    licence sync asks again; Bitrix24 never resends an install, so it is not refused for that."""
    credentials = read_secret(settings().bitrix24_app_credentials_id)
    client_id, client_secret = (
        credentials.get(name) if isinstance(credentials, dict) else None for name in ("client_id", "client_secret")
    )
    refresh_token = auth.get("refresh_token")
    if replay and not (isinstance(refresh_token, str) and refresh_token) and portal_tokens.vouch_pending(member_id):
        # A replay: its refresh token was kept when it was parked. The sync vouches for a new
        # install; a new application token for a bound portal is vouched for now.
        if may_wait:
            return False, True
        _vouched_with_kept_token(member_id, str(auth.get("domain") or ""))
        return True, False
    unverifiable = [
        reason
        for reason, missing in (
            (
                "Bitrix24AppCredentials holds no client id and secret",
                not (isinstance(client_id, str) and client_id and isinstance(client_secret, str) and client_secret),
            ),
            # Real installs do not always carry one (the PHP SDK's own fixture has none): never a refusal.
            ("the event carries no refresh_token", not (isinstance(refresh_token, str) and refresh_token)),
        )
        if missing
    ]
    if unverifiable:
        metrics.add_metric(name="MemberUnverified", unit=MetricUnit.Count, value=1)
        logger.warning("member_id not vouched for", extra={"why": unverifiable[0]})
        return False, False
    server_endpoint = str(auth.get("server_endpoint") or "")
    if portal_tokens.refused_before(str(refresh_token)):  # each works once: refused, never asked again
        raise WrongCredentials("Bitrix24's OAuth server refused the event's refresh token before.")
    try:
        owner = bitrix24.refresh_tokens(server_endpoint, str(refresh_token), str(client_id), str(client_secret))
    except bitrix24.TokenRefused as refused:
        if refused.error != bitrix24.PAYMENT_REQUIRED:  # the app unpaid says nothing of the token
            portal_tokens.remember_refused(str(refresh_token), refused.error)
        raise WrongCredentials("Bitrix24's OAuth server refused the event's refresh token.") from None
    except PortalUnavailable:
        if portal_tokens.keep_unvouched(member_id, str(refresh_token), server_endpoint):
            metrics.add_metric(name="MemberVouchPending", unit=MetricUnit.Count, value=1)
            if not may_wait:  # a new application token waits for the vouching: parked, vouched on replay
                raise PortalUnconfirmed(
                    "Bitrix24's OAuth server did not answer. Parked: replayed until it vouches for the new token."
                ) from None
            logger.warning("member_id to be vouched for later: the OAuth server did not answer")
            return False, True
        raise
    endpoint_host = urlsplit(str(owner.get("client_endpoint") or "")).hostname or ""
    if owner["member_id"] != member_id or endpoint_host.lower() != str(auth.get("domain") or "").strip().lower():
        raise WrongCredentials("The event's tokens belong to another portal than its member_id and domain say.")
    # The event's refresh token is spent: the pair the server just issued is the portal's from now
    # on, kept sealed for the licence sync (domain/licence_sync.py).
    portal_tokens.keep_issued(member_id, owner, server_endpoint)
    return True, False


def _confirmed_app_info(info: AppInfo) -> AppInfo:
    app_code = settings().bitrix24_app_code
    if not app_code:
        raise WebhookError("Installs cannot be confirmed: BITRIX24_APP_CODE is not configured.")
    if info.CODE != app_code or not info.INSTALLED:
        raise WrongCredentials("The portal does not confirm that this app is installed.")
    return info
