"""POST /billing/percent-of-balance-used: the billing system's PercentOfBalanceUsed notification."""

from billing_webhooks.http.auth import billing_credentials
from billing_webhooks.http.pipeline import Webhook
from billing_webhooks.models.billing.percent_of_balance_used import PercentOfBalanceUsed

handler = Webhook(PercentOfBalanceUsed, auth=billing_credentials).handler
