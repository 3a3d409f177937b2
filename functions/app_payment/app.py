"""POST /bitrix24/app-payment: the Bitrix24 ONAPPPAYMENT event (form-encoded on the wire)."""

from billing_webhooks.auth import portal_application_token
from billing_webhooks.decoding import FORM, JSON
from billing_webhooks.models.bitrix24 import AppPaymentEvent
from billing_webhooks.pipeline import Webhook

handler = Webhook(AppPaymentEvent, auth=portal_application_token, media_types=frozenset({FORM, JSON})).handler
