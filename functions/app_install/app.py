"""POST /bitrix24/app-install: ONAPPINSTALL, believed once the portal's app.info confirms it."""

from billing_webhooks import bindings
from billing_webhooks.auth import portal_confirms_install
from billing_webhooks.decoding import BITRIX24
from billing_webhooks.models.bitrix24 import AppInstallEvent
from billing_webhooks.pipeline import Webhook

handler = Webhook(AppInstallEvent, auth=portal_confirms_install, media_types=BITRIX24, effect=bindings.install,
                  keep_access_token=True, validate_first=True).handler
