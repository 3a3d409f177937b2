"""POST /billing/percent-of-balance-used: the billing system's PercentOfBalanceUsed notification."""

from billing_webhooks.auth import billing_credentials
from billing_webhooks.models.billing.percent_of_balance_used import PercentOfBalanceUsed
from billing_webhooks.pipeline import Webhook

handler = Webhook(PercentOfBalanceUsed, auth=billing_credentials).handler
