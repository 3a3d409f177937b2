"""The 8 notifications of the billing system (seed 004): a common envelope, details per type."""

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import Field

from billing_webhooks.models.base import Money, Notification, OpenWireDateTime, WireDateTime, WireModel


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


class UnPaidInvoiceDetails(WireModel):
    invoice_id: int
    statement_date: WireDateTime
    payment_due_date: WireDateTime
    days_not_paid: int
    days_before_blocking: int


class StatePeriod(WireModel):
    state: str
    date_from: WireDateTime
    date_to: OpenWireDateTime  # "" while the state lasts


class AccountStateChangeDetails(WireModel):
    reason: str
    new_state: StatePeriod
    prev_state: StatePeriod


class TrialReminderDetails(WireModel):
    start_date: WireDateTime
    current_date: WireDateTime
    days_left: int


class PercentOfBalanceUsedDetails(WireModel):
    balance: str  # the balance's name, e.g. "Tasks" or "Money_BYN"
    start_value: Decimal
    used_percentage: Decimal
    current_value: Decimal


class ProductStateChangeDetails(WireModel):
    action: str
    product_name: str
    product_type: str
    product_id: int
    sold_product_id: int
    product_code: str
    new_state: StatePeriod
    prev_state: StatePeriod


class NewPaymentDetails(WireModel):
    amount: Money
    balance_after: Money
    balance_before: Money
    balance_name: str
    channel: str
    invoice_id: list[int]
    paym_ext_id: str
    payment_id: int


class BillingNotification(Notification):
    """The envelope every billing notification shares."""

    source: ClassVar[str] = "billing"
    restamped_fields: ClassVar[frozenset[str]] = frozenset({"transfer_date"})

    id: str = Field(min_length=1, max_length=256)
    original_event_date: WireDateTime
    transfer_date: WireDateTime
    type: str
    code: str  # the billing rule's name: an open set
    account_id: int
    account_code: str
    lang_code: str
    curr_code: str

    @property
    def notification_id(self) -> str:
        return self.id

    @property
    def notification_type(self) -> str:
        return self.type

    @property
    def account_key(self) -> str:
        return f"billing#{self.account_id}"

    @property
    def event_time(self) -> datetime:
        return self.original_event_date

    @property
    def rule_code(self) -> str:
        return self.code


class InvoiceForNewPeriod(BillingNotification):
    type: Literal["InvoiceForNewPeriod"]
    details: InvoiceDetails


class InvoiceForNewProduct(BillingNotification):
    type: Literal["InvoiceForNewProduct"]
    details: InvoiceDetails


class UnPaidInvoice(BillingNotification):
    type: Literal["UnPaidInvoice"]
    details: UnPaidInvoiceDetails


class AccountStateChange(BillingNotification):
    type: Literal["AccountStateChange"]
    details: AccountStateChangeDetails


class TrialReminder(BillingNotification):
    type: Literal["TrialReminder"]
    details: TrialReminderDetails


class PercentOfBalanceUsed(BillingNotification):
    type: Literal["PercentOfBalanceUsed"]
    details: PercentOfBalanceUsedDetails


class ProductStateChange(BillingNotification):
    type: Literal["ProductStateChange"]
    details: ProductStateChangeDetails


class NewPayment(BillingNotification):
    type: Literal["NewPayment"]
    details: NewPaymentDetails
