"""The envelope every billing notification shares (seed 004)."""

from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

from billing_webhooks.models.base import Notification, WireDateTime

# The read API and the CLI name an account by its id in the path: what they can name, and no more.
ACCOUNT_ID_DIGITS = 38


def _not_a_boolean(value: Any) -> Any:
    if isinstance(value, bool):  # JSON true would otherwise be account 1
        raise PydanticCustomError("int_type", "an account id is a whole number, not true or false")
    return value


AccountId = Annotated[
    int, BeforeValidator(_not_a_boolean), Field(gt=-(10**ACCOUNT_ID_DIGITS), lt=10**ACCOUNT_ID_DIGITS)
]


class BillingNotification(Notification):
    """The envelope every billing notification shares."""

    source: ClassVar[str] = "billing"
    restamped_fields: ClassVar[frozenset[str]] = frozenset({"transfer_date"})

    id: str = Field(min_length=1, max_length=256)
    original_event_date: WireDateTime
    transfer_date: WireDateTime
    type: str
    code: str  # the billing rule's name: an open set
    account_id: AccountId
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
