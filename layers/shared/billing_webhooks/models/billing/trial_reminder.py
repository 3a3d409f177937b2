"""TrialReminder: days left of a trial."""

from typing import Literal

from billing_webhooks.models.base import WireDateTime, WireModel
from billing_webhooks.models.billing.envelope import BillingNotification


class TrialReminderDetails(WireModel):
    start_date: WireDateTime
    current_date: WireDateTime
    days_left: int


class TrialReminder(BillingNotification):
    type: Literal["TrialReminder"]
    details: TrialReminderDetails
