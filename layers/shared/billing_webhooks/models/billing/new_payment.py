"""NewPayment: money paid in, with the balance before and after."""

from typing import Literal

from billing_webhooks.models.base import Money, WireModel
from billing_webhooks.models.billing.envelope import BillingNotification


class NewPaymentDetails(WireModel):
    amount: Money
    balance_after: Money
    balance_before: Money
    balance_name: str
    channel: str
    invoice_id: list[int]
    paym_ext_id: str
    payment_id: int


class NewPayment(BillingNotification):
    type: Literal["NewPayment"]
    details: NewPaymentDetails
