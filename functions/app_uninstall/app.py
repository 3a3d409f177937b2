"""POST /bitrix24/app-uninstall: ONAPPUNINSTALL; the portal's events are refused afterwards."""

from billing_webhooks.domain import lifecycle
from billing_webhooks.http.pipeline import Webhook
from billing_webhooks.http.portal_token import portal_uninstall_token
from billing_webhooks.models.bitrix24 import AppUninstallEvent
from billing_webhooks.wire.decoding import BITRIX24

handler = Webhook(
    AppUninstallEvent, auth=portal_uninstall_token, media_types=BITRIX24, effect=lifecycle.uninstall
).handler
