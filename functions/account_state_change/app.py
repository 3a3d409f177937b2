"""POST /billing/account-state-change: the billing system's AccountStateChange notification."""

from billing_webhooks.auth import billing_credentials
from billing_webhooks.models.billing.state_changes import AccountStateChange
from billing_webhooks.pipeline import Webhook

handler = Webhook(AccountStateChange, auth=billing_credentials).handler
