"""AccountStateChange and ProductStateChange: a state left for another."""

from typing import Literal

from billing_webhooks.models.base import OpenWireDateTime, WireDateTime, WireModel
from billing_webhooks.models.billing.envelope import BillingNotification


class StatePeriod(WireModel):
    state: str
    date_from: WireDateTime
    date_to: OpenWireDateTime  # "" while the state lasts


class AccountStateChangeDetails(WireModel):
    reason: str
    new_state: StatePeriod
    prev_state: StatePeriod


class AccountStateChange(BillingNotification):
    type: Literal["AccountStateChange"]
    details: AccountStateChangeDetails


class ProductStateChangeDetails(WireModel):
    action: str
    product_name: str
    product_type: str
    product_id: int
    sold_product_id: int
    product_code: str
    new_state: StatePeriod
    prev_state: StatePeriod


class ProductStateChange(BillingNotification):
    type: Literal["ProductStateChange"]
    details: ProductStateChangeDetails
