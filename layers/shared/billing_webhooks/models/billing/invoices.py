"""InvoiceForNewPeriod and InvoiceForNewProduct: an invoice with its pay links."""

from enum import StrEnum
from typing import Literal

from pydantic import Field

from billing_webhooks.models.base import OpenWireDateTime, WireDateTime, WireModel
from billing_webhooks.models.billing.envelope import BillingNotification


class InvoiceType(StrEnum):
    REGULAR = "regular"
    ON_DEMAND = "on demand"


class PaymentLink(WireModel):
    PaymentProfile: str
    PaymentSystem: str
    URL: str = Field(pattern=r"^https?://\S+$")


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
