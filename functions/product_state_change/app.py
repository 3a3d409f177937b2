"""POST /billing/product-state-change: the billing system's ProductStateChange notification."""

from billing_webhooks.http.auth import billing_credentials
from billing_webhooks.http.pipeline import Webhook
from billing_webhooks.models.billing.state_changes import ProductStateChange

handler = Webhook(ProductStateChange, auth=billing_credentials).handler
