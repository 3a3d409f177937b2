"""POST /billing/unpaid-invoice: the billing system's UnPaidInvoice notification."""

from billing_webhooks.auth import billing_credentials
from billing_webhooks.models.billing.unpaid_invoice import UnPaidInvoice
from billing_webhooks.pipeline import Webhook

handler = Webhook(UnPaidInvoice, auth=billing_credentials, alert=True).handler
