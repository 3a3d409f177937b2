"""PercentOfBalanceUsed: a share of a balance used up."""

from decimal import Decimal
from typing import Literal

from billing_webhooks.models.base import WireModel
from billing_webhooks.models.billing.envelope import BillingNotification


class PercentOfBalanceUsedDetails(WireModel):
    balance: str  # the balance's name, e.g. "Tasks" or "Money_BYN"
    start_value: Decimal
    used_percentage: Decimal
    current_value: Decimal


class PercentOfBalanceUsed(BillingNotification):
    type: Literal["PercentOfBalanceUsed"]
    details: PercentOfBalanceUsedDetails
