"""UnPaidInvoice: an invoice overdue, and when the account will be blocked."""

from typing import Literal

from billing_webhooks.models.base import WireDateTime, WireModel
from billing_webhooks.models.billing.envelope import BillingNotification


class UnPaidInvoiceDetails(WireModel):
    invoice_id: int
    statement_date: WireDateTime
    payment_due_date: WireDateTime
    days_not_paid: int
    days_before_blocking: int


class UnPaidInvoice(BillingNotification):
    type: Literal["UnPaidInvoice"]
    details: UnPaidInvoiceDetails
