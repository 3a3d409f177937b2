"""Bitrix24 ONAPPPAYMENT (seed 000, with what WIRE-FORMATS.md adds of the real wire)."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, SecretStr

from billing_webhooks.models.base import (
    Notification,
    UnixTime,
    WireModel,
    canonical_sha256,
    empty_as_none,
    utc_timestamp,
)


class AppStatus(StrEnum):
    FREE = "F"
    DEMO = "D"
    TRIAL = "T"
    PAID = "P"
    LOCAL = "L"
    SUBSCRIPTION = "S"


class YesNo(StrEnum):
    YES = "Y"
    NO = "N"


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


# Tokens are secrets: never dumped (so never stored, hashed or logged), never shown in a repr.
Token = Annotated[SecretStr | None, Field(default=None, exclude=True)]


class PortalAuth(WireModel):
    domain: str
    server_endpoint: str
    client_endpoint: str
    member_id: str = Field(min_length=1)
    application_token: Token
    access_token: Token
    refresh_token: Token


class AppPaymentData(WireModel):
    CODE: str
    VERSION: int
    STATUS: AppStatus
    PAYMENT_EXPIRED: YesNo
    # Absent, empty or null on real deliveries, negative after expiry.
    DAYS: Annotated[int | None, BeforeValidator(empty_as_none)] = None
    LANGUAGE_ID: str | None = None


class AppPaymentEvent(Notification):
    source: ClassVar[str] = "bitrix24"
    # The queue server stamps a new handler id; tokens are excluded from the payload anyway.
    restamped_fields: ClassVar[frozenset[str]] = frozenset({"event_handler_id"})

    event: Annotated[Literal["ONAPPPAYMENT"], BeforeValidator(_upper)]
    event_handler_id: Annotated[int | None, BeforeValidator(empty_as_none)] = None
    data: AppPaymentData
    ts: UnixTime  # Unix seconds: when the queue sent the event
    auth: PortalAuth

    @property
    def notification_id(self) -> str:
        # Bitrix24 events carry no id: derive one from what identifies the event, never from tokens.
        identity = {
            "member_id": self.auth.member_id,
            "event": self.event,
            "ts": utc_timestamp(self.ts),
            "data": self.data.model_dump(mode="python"),
        }
        return "b24-" + canonical_sha256(identity)[:32]

    @property
    def notification_type(self) -> str:
        return self.event

    @property
    def account_key(self) -> str:
        return f"bitrix24#{self.auth.member_id}"

    @property
    def event_time(self) -> datetime:
        return self.ts

    @property
    def rule_code(self) -> str:
        return self.data.CODE
