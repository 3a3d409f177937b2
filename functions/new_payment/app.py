"""POST /billing/new-payment: the billing system's NewPayment notification."""

from billing_webhooks.http.auth import billing_credentials
from billing_webhooks.http.pipeline import Webhook
from billing_webhooks.models.billing.new_payment import NewPayment

handler = Webhook(NewPayment, auth=billing_credentials).handler
