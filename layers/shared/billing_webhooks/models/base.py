"""Value types shared by the payload models, and the interface the pipeline needs of a model."""

import hashlib
import json
from datetime import UTC, datetime
from decimal import Context, Decimal
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)
from pydantic_core import PydanticCustomError


def _parse_wire_datetime(value: Any) -> Any:
    # The billing system writes "2019-03-05 17:10:22 +02:00": fromisoformat reads it, pydantic's
    # own parser does not accept the space before the offset. Its API also writes dates without
    # a zone: those are read as UTC (the rule in docs/wire-formats.md).
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            return value  # let pydantic report it with the field's path
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return value


def _has_utc_instant(moment: datetime) -> datetime:
    # 0001-01-01 00:00 +05:00 and 9999-12-31 23:59 -05:00 are valid dates whose UTC instant is not
    # (year 0, year 10000): every record time, order and derived date is in UTC, so they are refused.
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("a moment whose UTC time falls outside years 1 to 9999") from None
    return moment


def empty_as_none(value: Any) -> Any:
    return None if value == "" else value


_ISO = PlainSerializer(lambda value: value.isoformat(), return_type=str)

# An aware timestamp as the billing system writes it; one without a zone is read as UTC.
WireDateTime = Annotated[AwareDatetime, BeforeValidator(_parse_wire_datetime), AfterValidator(_has_utc_instant), _ISO]
# The same, where "" means "none" (an open-ended period).
OpenWireDateTime = Annotated[WireDateTime | None, BeforeValidator(empty_as_none)]
# Unix seconds (Bitrix24 `ts`), stored as sent.
UnixTime = Annotated[AwareDatetime, PlainSerializer(lambda value: int(value.timestamp()), return_type=int)]
# Money never goes through float: JSON is decoded with parse_float=Decimal and kept as Decimal.
Money = Annotated[Decimal, Field(allow_inf_nan=False)]


# Bitrix24's OAuth server, where an event names none (the chat-bot docs' shape carries no endpoints).
DEFAULT_SERVER_ENDPOINT = "https://oauth.bitrix.info/rest/"


def with_endpoints(auth: Any) -> Any:
    """An `auth` object with the endpoints it left out derived from its own `auth.domain`: the
    portal's REST endpoint is https://<domain>/rest/, the OAuth server Bitrix24's. Endpoints sent
    are kept as sent (and checked like any)."""
    if not isinstance(auth, dict) or not isinstance(auth.get("domain"), str) or not auth["domain"].strip():
        return auth
    derived = dict(auth)
    if not derived.get("client_endpoint"):
        derived["client_endpoint"] = f"https://{auth['domain'].strip().lower()}/rest/"
    if not derived.get("server_endpoint"):
        derived["server_endpoint"] = DEFAULT_SERVER_ENDPOINT
    return derived


class WireModel(BaseModel):
    """Field names exactly as on the wire; unknown fields are kept, never dropped."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)


def utc_timestamp(moment: datetime) -> str:
    """Sortable UTC ISO 8601, the format of the record's time attributes."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def from_utc_timestamp(stamp: str) -> datetime:
    """A time attribute read back (utc_timestamp's format), aware."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def json_number(value: Any) -> Any:
    """`default=` for json.dumps of payloads and records, whose numbers are Decimal: a JSON number
    again, whole numbers as integers. One too long to spell out (1E+999999 would be a million
    digits) stays its text: such a value is refused when it is read anyway."""
    if isinstance(value, Decimal):
        if not value.is_finite() or abs(value.adjusted()) > 40:
            return str(value)
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _canonical(value: Any) -> Any:
    # Numbers compare by value whatever their spelling on the wire (2000, 2000.0, "2000" in a form).
    if isinstance(value, str):  # most values: first
        return value
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | Decimal):
        return {"#": format(Decimal(value).normalize(), "f")}
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return str(value)


def canonical_sha256(value: Any) -> str:
    text = json.dumps(_canonical(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# DynamoDB numbers: 38 significant digits, magnitudes from 1E-130 to below 1E+126.
_MAX_DIGITS, _MIN_EXPONENT, _MAX_EXPONENT = 38, -130, 125


# Wider than any number DynamoDB holds (38 digits up to 1E+125), so normalizing in it never rounds
# one that fits: the default context's 28 digits would round 39 digits down to 28 and let them by.
EXACT = Context(prec=200)


def exact_number(value: int | Decimal) -> Decimal:
    """The number without trailing zeros, never rounded (for what DynamoDB can hold)."""
    return Decimal(value).normalize(EXACT)


def _storable_number(value: int | Decimal) -> bool:
    number = Decimal(value)
    if not number.is_finite():
        return False
    if number.is_zero():
        return True
    return (
        len(exact_number(number).as_tuple().digits) <= _MAX_DIGITS
        and _MIN_EXPONENT <= number.adjusted() <= _MAX_EXPONENT
    )


def _unstorable_number_path(payload: Any) -> str | None:
    """The path of the first number in `payload` (extras included) that DynamoDB cannot hold."""
    stack: list[tuple[Any, str]] = [(payload, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            stack.extend((child, f"{path}.{key}" if path else str(key)) for key, child in value.items())
        elif isinstance(value, list | tuple):
            stack.extend((child, f"{path}[{index}]") for index, child in enumerate(value))
        elif isinstance(value, int | Decimal) and not isinstance(value, bool):
            if isinstance(value, int) and value.bit_length() > 128:  # beyond 38 digits at any rate
                return path
            if not _storable_number(value):
                return path
    return None


class Notification(WireModel):
    """What the pipeline reads off any validated payload to store it."""

    source: ClassVar[str]
    # Top-level fields a sender restamps on redelivery: left out of the payload hash.
    restamped_fields: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _numbers_dynamodb_can_store(cls, payload: Any) -> Any:
        # Kept as sent, unknown fields included, so every number must fit a DynamoDB number.
        path = _unstorable_number_path(payload)
        if path is not None:
            raise PydanticCustomError(
                "number_not_storable", "{path}: a number beyond 38 digits or 1E+125 cannot be stored", {"path": path}
            )
        return payload

    @property
    def notification_id(self) -> str:
        raise NotImplementedError

    @property
    def notification_type(self) -> str:
        raise NotImplementedError

    @property
    def account_key(self) -> str:
        raise NotImplementedError

    @property
    def notification_key(self) -> str:
        """The record's key as one string: the correlation id of its log lines and alert."""
        return f"{self.notification_type}#{self.notification_id}"

    @property
    def event_time(self) -> datetime:
        raise NotImplementedError

    @property
    def rule_code(self) -> str:
        raise NotImplementedError

    def stored_payload(self) -> dict[str, Any]:
        """The validated payload as stored: money as Decimal, times as ISO strings, extras kept."""
        return self.model_dump(mode="python")

    def payload_sha256(self, stored_payload: dict[str, Any] | None = None) -> str:
        """The hash that tells a redelivery from a conflict (`stored_payload` if already dumped)."""
        payload = dict(stored_payload if stored_payload is not None else self.stored_payload())
        for field in self.restamped_fields:
            payload.pop(field, None)
        return canonical_sha256(payload)
