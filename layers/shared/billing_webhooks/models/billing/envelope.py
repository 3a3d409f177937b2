"""The envelope every billing notification shares (seed 004)."""

from datetime import datetime
from typing import ClassVar

from pydantic import Field

from billing_webhooks.models.base import Notification, WireDateTime


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
