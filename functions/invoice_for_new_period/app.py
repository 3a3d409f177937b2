"""POST /billing/invoice-for-new-period: the billing system's InvoiceForNewPeriod notification."""

from billing_webhooks.auth import billing_credentials
from billing_webhooks.models.billing.invoices import InvoiceForNewPeriod
from billing_webhooks.pipeline import Webhook

handler = Webhook(InvoiceForNewPeriod, auth=billing_credentials).handler
