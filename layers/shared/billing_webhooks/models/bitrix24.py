"""Bitrix24 events: ONAPPPAYMENT (seed 000) and the app lifecycle (ONAPPINSTALL, ONAPPUPDATE,
ONAPPUNINSTALL), with what WIRE-FORMATS.md adds of the real wire, and the `app.info` answer (seed 003)."""

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator

from billing_webhooks import clock
from billing_webhooks.models.base import (
    Notification,
    UnixTime,
    WireModel,
    canonical_sha256,
    empty_as_none,
    utc_timestamp,
    with_endpoints,
)

# Values we only record are kept as sent: an unknown one tomorrow is no reason to lose an event.
# STATUS (app.info): F free, D demo, T trial, P paid, L local, S subscription.
AppStatus = Annotated[str, Field(max_length=32)]
# PAYMENT_EXPIRED, ACTIVE, INSTALLED: Y or N.
YesNo = Annotated[str, Field(max_length=8)]
# 1, "1", "2.1.0": the docs' tables say string, the payment example shows a number. A whole
# number is read as one (form values are all strings, and JSON and form deliveries of one event
# must be one notification); anything else is kept as sent.
Version = Annotated[int | Annotated[str, Field(max_length=64)] | Decimal, Field(union_mode="left_to_right")]


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


UpperCase = BeforeValidator(_upper)  # event names are upper case on the wire, not always in docs


# Tokens are secrets: never dumped (so never stored, hashed or logged), never shown in a repr.
Token = Annotated[SecretStr | None, Field(default=None, exclude=True)]


class PortalAuth(WireModel):
    domain: str
    server_endpoint: str
    client_endpoint: str

    @model_validator(mode="before")
    @classmethod
    def _endpoints_from_domain(cls, auth: Any) -> Any:
        return with_endpoints(auth)

    member_id: str = Field(min_length=1)
    application_token: Token
    access_token: Token
    refresh_token: Token


# Absent, empty or null on real deliveries, negative after expiry.
Days = Annotated[int | None, BeforeValidator(empty_as_none)]


class AppPaymentData(WireModel):
    CODE: str
    VERSION: Version
    STATUS: AppStatus
    PAYMENT_EXPIRED: YesNo
    DAYS: Days = None
    LANGUAGE_ID: str | None = None


class AppInstallData(WireModel):
    VERSION: Version
    ACTIVE: YesNo | None = None
    INSTALLED: YesNo | None = None
    LANGUAGE_ID: str | None = None


class AppUpdateData(WireModel):
    VERSION: Version
    PREVIOUS_VERSION: Version | None = None
    LANGUAGE_ID: str | None = None


class AppUninstallData(WireModel):
    LANGUAGE_ID: str | None = None
    CLEAN: Annotated[int | None, BeforeValidator(empty_as_none)] = None  # 1: the portal erased the app's data


TS_TOLERANCE = timedelta(minutes=5)  # clocks drift; a queue does not send from the future


class Bitrix24Event(Notification):
    """What every Bitrix24 event has: `event`, `data`, `ts` and the portal's `auth`."""

    source: ClassVar[str] = "bitrix24"
    # The queue server stamps a new handler id; tokens are excluded from the payload anyway.
    restamped_fields: ClassVar[frozenset[str]] = frozenset({"event_handler_id"})

    event: str
    event_handler_id: Annotated[int | None, BeforeValidator(empty_as_none)] = None
    data: WireModel
    ts: UnixTime  # Unix seconds: when the queue sent the event
    auth: PortalAuth

    @field_validator("ts")
    @classmethod
    def _not_ahead_of_our_clock(cls, value: datetime) -> datetime:
        # Lifecycle writes keep the newest ts: one from the future would freeze a portal's state.
        if value > clock.now() + TS_TOLERANCE:
            raise ValueError(f"ts is more than {int(TS_TOLERANCE.total_seconds())} s ahead of our clock")
        return value

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
        return self.event


class AppPaymentEvent(Bitrix24Event):
    event: Annotated[Literal["ONAPPPAYMENT"], UpperCase]
    data: AppPaymentData

    @property
    def rule_code(self) -> str:
        return self.data.CODE


class AppInstallEvent(Bitrix24Event):
    event: Annotated[Literal["ONAPPINSTALL"], UpperCase]
    data: AppInstallData


class AppUpdateEvent(Bitrix24Event):
    event: Annotated[Literal["ONAPPUPDATE"], UpperCase]
    data: AppUpdateData


class AppUninstallEvent(Bitrix24Event):
    event: Annotated[Literal["ONAPPUNINSTALL"], UpperCase]
    data: AppUninstallData


def _truthy(value: Any) -> Any:
    # JSON answers `true`, the XML flavour `1`; both mean installed.
    if isinstance(value, str) and value.strip().lower() in {"1", "true", "y"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"", "0", "false", "n"}:
        return False
    return value


class AppInfo(WireModel):
    """`app.info`'s `result`: the portal's own word on our app (seed 003)."""

    ID: str | int | None = None
    CODE: str
    VERSION: Version | None = None
    STATUS: AppStatus | None = None
    INSTALLED: Annotated[bool, BeforeValidator(_truthy)]
    PAYMENT_EXPIRED: YesNo | None = None
    DAYS: Days = None
    LANGUAGE_ID: str | None = None
    LICENSE: str | None = None
    LICENSE_TYPE: str | None = None
    LICENSE_FAMILY: str | None = None


class PortalConfirmation(WireModel):
    """What an install or update learned from the portal before it was believed: the portal's
    `app.info`, and the URLs of this stack where the portal's other lifecycle events must go."""

    info: AppInfo
    handlers: dict[str, str] = Field(default_factory=dict)  # event name -> our handler URL
    # Bitrix24's OAuth server named this member_id and domain for the event's tokens: the portal's
    # identity is bound. An install it could not vouch for is kept but binds nothing (docs/security.md).
    vouched: bool = False
    # The OAuth server could not be asked (down, no answer): the install is kept unvouched with its
    # sealed refresh token, and the licence sync vouches for it later (domain/licence_sync.py).
    vouch_pending: bool = False
    # A replay whose sealed access token ran out was vouched for with its kept refresh token: the
    # fresh access token binds the portal's events. Never dumped: a parcel holds no token.
    fresh_access_token: SecretStr | None = Field(default=None, exclude=True, repr=False)
