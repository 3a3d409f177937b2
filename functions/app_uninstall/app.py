"""POST /bitrix24/app-uninstall: ONAPPUNINSTALL; the portal's events are refused afterwards."""

from billing_webhooks import installations
from billing_webhooks.auth import portal_uninstall_token
from billing_webhooks.decoding import BITRIX24
from billing_webhooks.models.bitrix24 import AppUninstallEvent
from billing_webhooks.pipeline import Webhook

handler = Webhook(AppUninstallEvent, auth=portal_uninstall_token, media_types=BITRIX24, effect=installations.uninstall).handler
