"""Value types shared by the payload models, and the interface the pipeline needs of a model."""

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer


def _parse_wire_datetime(value: Any) -> Any:
    # The billing system writes "2019-03-05 17:10:22 +02:00": fromisoformat reads it, pydantic's
    # own parser does not accept the space before the offset.
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            return value  # let pydantic report it with the field's path
    return value


def empty_as_none(value: Any) -> Any:
    return None if value == "" else value


_ISO = PlainSerializer(lambda value: value.isoformat(), return_type=str)

# An aware timestamp as the billing system writes it; naive timestamps are refused.
WireDateTime = Annotated[AwareDatetime, BeforeValidator(_parse_wire_datetime), _ISO]
# The same, where "" means "none" (an open-ended period).
OpenWireDateTime = Annotated[WireDateTime | None, BeforeValidator(empty_as_none)]
# Unix seconds (Bitrix24 `ts`), stored as sent.
UnixTime = Annotated[AwareDatetime, PlainSerializer(lambda value: int(value.timestamp()), return_type=int)]
# Money never goes through float: JSON is decoded with parse_float=Decimal and kept as Decimal.
Money = Annotated[Decimal, Field(allow_inf_nan=False)]


class WireModel(BaseModel):
    """Field names exactly as on the wire; unknown fields are kept, never dropped."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)


def utc_timestamp(moment: datetime) -> str:
    """Sortable UTC ISO 8601, the format of the record's time attributes."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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


class Notification(WireModel):
    """What the pipeline reads off any validated payload to store it."""

    source: ClassVar[str]
    # Top-level fields a sender restamps on redelivery: left out of the payload hash.
    restamped_fields: ClassVar[frozenset[str]] = frozenset()

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
