"""POST /billing/unpaid-invoice: the billing system's UnPaidInvoice notification."""

from billing_webhooks.http.auth import billing_credentials
from billing_webhooks.http.pipeline import Webhook
from billing_webhooks.models.billing.unpaid_invoice import UnPaidInvoice

handler = Webhook(UnPaidInvoice, auth=billing_credentials, alert=True).handler
