"""POST /billing/new-payment: the billing system's NewPayment notification."""

from billing_webhooks.auth import billing_shared_secret
from billing_webhooks.models.billing import NewPayment
from billing_webhooks.pipeline import Webhook

handler = Webhook(NewPayment, auth=billing_shared_secret).handler
