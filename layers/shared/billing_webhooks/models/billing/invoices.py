"""InvoiceForNewPeriod and InvoiceForNewProduct: an invoice with its pay links."""

from typing import Annotated, Literal

from pydantic import Field

from billing_webhooks.models.base import OpenWireDateTime, WireDateTime, WireModel
from billing_webhooks.models.billing.envelope import BillingNotification

# "regular", "on demand", "interim" (the billing platform's API), or whatever it adds: recorded as sent.
InvoiceType = Annotated[str, Field(max_length=64)]


class PaymentLink(WireModel):
    """Kept as sent; the alert mail shows only https URLs (domain/alerts.py)."""

    PaymentProfile: str
    PaymentSystem: str
    URL: str


class InvoiceDetails(WireModel):
    invoice_file: str
    invoice_type: InvoiceType
    invoice_id: int
    date_from: WireDateTime
    date_to: OpenWireDateTime
    Url_to_pay: list[PaymentLink]


class InvoiceForNewPeriod(BillingNotification):
    type: Literal["InvoiceForNewPeriod"]
    details: InvoiceDetails


class InvoiceForNewProduct(BillingNotification):
    type: Literal["InvoiceForNewProduct"]
    details: InvoiceDetails
