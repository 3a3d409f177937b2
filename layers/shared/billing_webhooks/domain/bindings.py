"""A confirmed install subscribes the portal to the rest of the app's lifecycle.

Bitrix24 sends ONAPPINSTALL to the handler set in the app's settings; ONAPPPAYMENT, ONAPPUPDATE
and ONAPPUNINSTALL reach a handler only once the app has bound them with `event.bind`, and an
update removes the app's bindings ("in the installer of each version, they need to be set from
scratch"). So every confirmed install and update asks `event.get` first and binds only what is
missing, all in one `batch` call: a reinstall, a redelivery or a replay binds nothing twice.

The URLs bound are this stack's own, read off the install's request (API Gateway's domain and
stage). A bind that fails leaves the install stored and answers 502, and the delivery is parked
with its access token sealed, so ReplayFunction binds what is missing minutes later.
"""

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from aws_lambda_powertools.metrics import MetricUnit

from billing_webhooks.data import bitrix24
from billing_webhooks.domain import lifecycle
from billing_webhooks.errors import BindingFailed, PortalUnavailable
from billing_webhooks.models.bitrix24 import AppInstallEvent, AppUpdateEvent, Bitrix24Event, PortalConfirmation
from billing_webhooks.observability import logger, metrics
from billing_webhooks.wire.decoding import lowered_headers
from billing_webhooks.wire.delivery import Delivery

# The portal events this stack receives besides ONAPPINSTALL, and the route of each (template.yaml).
LIFECYCLE_ROUTES = {
    "ONAPPPAYMENT": "/bitrix24/app-payment",
    "ONAPPUPDATE": "/bitrix24/app-update",
    "ONAPPUNINSTALL": "/bitrix24/app-uninstall",
}


def handler_urls(event: dict[str, Any]) -> dict[str, str]:
    """This stack's own URLs, read off the delivery that reached it: API Gateway's domain (or the
    custom domain it was called on), its stage, and the scheme it was called with."""
    context = event.get("requestContext") or {}
    domain = context.get("domainName")
    if not domain:
        return {}
    headers = lowered_headers(event)
    scheme = headers.get("x-forwarded-proto") or "https"
    stage = context.get("stage")
    prefix = "" if stage in (None, "", "$default") else f"/{stage}"
    return {name: f"{scheme}://{domain}{prefix}{path}" for name, path in LIFECYCLE_ROUTES.items()}


def bind_missing(event: Bitrix24Event, handlers: dict[str, str], token: str, vouched: bool = False) -> list[str]:
    """Bind each of `handlers` the portal does not have yet, with `token`; the events bound now.
    `vouched`: its domain is vouched for (a self-hosted portal's is called then only)."""
    domain, endpoint = event.auth.domain, event.auth.client_endpoint
    present = bitrix24.call(bitrix24.rest_url(domain, endpoint, "event.get", vouched=vouched), token)
    bound = {
        (str(handler.get("event", "")).upper(), handler.get("handler"))
        for handler in (present if isinstance(present, list) else [])
        if isinstance(handler, dict)
    }
    missing = {name: url for name, url in handlers.items() if (name, url) not in bound}
    if not missing:
        return []
    commands = [
        (f"cmd[{name}]", "event.bind?" + urlencode({"event": name, "handler": url}))
        for name, url in sorted(missing.items())
    ]
    answer = bitrix24.call(
        bitrix24.rest_url(domain, endpoint, "batch", vouched=vouched), token, [("halt", "0"), *commands]
    )
    refused = answer.get("result_error") if isinstance(answer, dict) else None
    if refused:
        raise PortalUnavailable(f"The portal refused event.bind for {', '.join(sorted(refused))}.")
    return sorted(missing)


def _subscribe(event: AppInstallEvent | AppUpdateEvent, confirmation: PortalConfirmation) -> None:
    if not confirmation.handlers:
        return
    # A replay whose sealed token ran out (recovery/parcels.py) was vouched for with its kept refresh token.
    access_token = event.auth.access_token or confirmation.fresh_access_token
    if access_token is None:
        # A stored install whose bind failed, replayed after its sealed token ran out: the install
        # stands; its events are bound at the portal's next install or update.
        metrics.add_metric(name="BindAbandoned", unit=MetricUnit.Count, value=1)
        logger.error(
            "portal events not bound: the access token expired before the replay", extra={"domain": event.auth.domain}
        )
        return
    try:
        newly = bind_missing(event, confirmation.handlers, access_token.get_secret_value(), confirmation.vouched)
    except PortalUnavailable as error:
        metrics.add_metric(name="BindFailed", unit=MetricUnit.Count, value=1)
        raise BindingFailed(
            f"Stored, but the portal's events are not bound yet ({error.detail}); "
            "the delivery is kept and bound again shortly."
        ) from None
    if newly:
        metrics.add_metric(name="EventsBound", unit=MetricUnit.Count, value=len(newly))
        logger.info("portal events bound", extra={"events": newly})


def install(event: AppInstallEvent, delivery: Delivery, now: datetime) -> bool | None:
    """ONAPPINSTALL's effect: the installation record, then the portal's bindings."""
    confirmation: PortalConfirmation = delivery.sender
    changed = lifecycle.install(event, confirmation, delivery.portal_token_sha256, now)
    _subscribe(event, confirmation)
    return changed


def update(event: AppUpdateEvent, delivery: Delivery, now: datetime) -> bool | None:
    """ONAPPUPDATE's effect: the new token, then the bindings the update removed."""
    confirmation: PortalConfirmation = delivery.sender
    changed = lifecycle.update(event, confirmation, delivery.portal_token_sha256, now)
    _subscribe(event, confirmation)
    return changed
