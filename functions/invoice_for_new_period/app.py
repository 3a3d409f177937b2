"""POST /billing/invoice-for-new-period: the billing system's InvoiceForNewPeriod notification."""

from billing_webhooks.http.auth import billing_credentials
from billing_webhooks.http.pipeline import Webhook
from billing_webhooks.models.billing.invoices import InvoiceForNewPeriod

handler = Webhook(InvoiceForNewPeriod, auth=billing_credentials).handler
