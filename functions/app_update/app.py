"""POST /bitrix24/app-update: ONAPPUPDATE, confirmed by app.info; the new token replaces the old."""

from billing_webhooks import bindings
from billing_webhooks.auth import portal_confirms_update
from billing_webhooks.decoding import BITRIX24
from billing_webhooks.models.bitrix24 import AppUpdateEvent
from billing_webhooks.pipeline import Webhook

handler = Webhook(AppUpdateEvent, auth=portal_confirms_update, media_types=BITRIX24, effect=bindings.update,
                  keep_access_token=True, validate_first=True).handler
