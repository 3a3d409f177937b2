"""POST /billing/invoice-for-new-product: the billing system's InvoiceForNewProduct notification."""

from billing_webhooks.auth import billing_credentials
from billing_webhooks.models.billing.invoices import InvoiceForNewProduct
from billing_webhooks.pipeline import Webhook

handler = Webhook(InvoiceForNewProduct, auth=billing_credentials).handler
