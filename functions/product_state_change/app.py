"""POST /billing/product-state-change: the billing system's ProductStateChange notification."""

from billing_webhooks.auth import billing_credentials
from billing_webhooks.models.billing.state_changes import ProductStateChange
from billing_webhooks.pipeline import Webhook

handler = Webhook(ProductStateChange, auth=billing_credentials).handler
