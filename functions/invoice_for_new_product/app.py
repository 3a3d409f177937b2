"""POST /billing/invoice-for-new-product: the billing system's InvoiceForNewProduct notification."""

from billing_webhooks.http.auth import billing_credentials
from billing_webhooks.http.pipeline import Webhook
from billing_webhooks.models.billing.invoices import InvoiceForNewProduct

handler = Webhook(InvoiceForNewProduct, auth=billing_credentials).handler
