"""POST /billing/account-state-change: the billing system's AccountStateChange notification."""

from billing_webhooks.http.auth import billing_credentials
from billing_webhooks.http.pipeline import Webhook
from billing_webhooks.models.billing.state_changes import AccountStateChange

handler = Webhook(AccountStateChange, auth=billing_credentials).handler
