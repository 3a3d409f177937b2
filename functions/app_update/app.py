"""POST /bitrix24/app-update: ONAPPUPDATE, confirmed by app.info; the new token replaces the old."""

from billing_webhooks.domain import bindings
from billing_webhooks.http.pipeline import Webhook
from billing_webhooks.http.portal_confirmation import portal_confirms_update
from billing_webhooks.models.bitrix24 import AppUpdateEvent
from billing_webhooks.wire.decoding import BITRIX24

handler = Webhook(
    AppUpdateEvent,
    auth=portal_confirms_update,
    media_types=BITRIX24,
    effect=bindings.update,
    keep_access_token=True,
    validate_first=True,
).handler
