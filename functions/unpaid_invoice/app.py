"""POST /billing/unpaid-invoice: the billing system's UnPaidInvoice notification."""

from billing_webhooks.auth import billing_shared_secret
from billing_webhooks.models.billing import UnPaidInvoice
from billing_webhooks.pipeline import Webhook

handler = Webhook(UnPaidInvoice, auth=billing_shared_secret, alert=True).handler
