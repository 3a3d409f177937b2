"""POST /bitrix24/app-payment: the Bitrix24 ONAPPPAYMENT event; it also refreshes the portal's licence state."""

from billing_webhooks import installations
from billing_webhooks.auth import portal_application_token
from billing_webhooks.decoding import BITRIX24
from billing_webhooks.models.bitrix24 import AppPaymentEvent
from billing_webhooks.pipeline import Webhook

handler = Webhook(AppPaymentEvent, auth=portal_application_token, media_types=BITRIX24, effect=installations.refresh_licence).handler
