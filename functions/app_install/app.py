"""POST /bitrix24/app-install: ONAPPINSTALL, believed once the portal's app.info confirms it."""

from billing_webhooks.domain import bindings
from billing_webhooks.http.pipeline import Webhook
from billing_webhooks.http.portal_confirmation import portal_confirms_install
from billing_webhooks.models.bitrix24 import AppInstallEvent
from billing_webhooks.wire.decoding import BITRIX24

handler = Webhook(
    AppInstallEvent,
    auth=portal_confirms_install,
    media_types=BITRIX24,
    effect=bindings.install,
    keep_access_token=True,
    validate_first=True,
).handler
