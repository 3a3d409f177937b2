"""POST /bitrix24/app-payment: the Bitrix24 ONAPPPAYMENT event; it also refreshes the portal's licence state."""

from billing_webhooks.domain import lifecycle
from billing_webhooks.http.pipeline import Webhook
from billing_webhooks.http.portal_token import portal_application_token
from billing_webhooks.models.bitrix24 import AppPaymentEvent
from billing_webhooks.wire.decoding import BITRIX24

handler = Webhook(
    AppPaymentEvent, auth=portal_application_token, media_types=BITRIX24, effect=lifecycle.refresh_licence
).handler
