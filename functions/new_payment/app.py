"""POST /billing/new-payment: the billing system's NewPayment notification."""

from billing_webhooks.auth import billing_credentials
from billing_webhooks.models.billing.new_payment import NewPayment
from billing_webhooks.pipeline import Webhook

handler = Webhook(NewPayment, auth=billing_credentials).handler
