"""Distinct deliveries to every notification route, made from the seed payloads: what `make load`
posts, and what the outage test posts while DynamoDB Local goes down and comes back."""

import json
from dataclasses import dataclass, field
from decimal import Decimal

from local import samples, seeds, template
from local.wire import php_form_encode

ALERT_TYPES = frozenset({"UnPaidInvoice", "TrialReminder"})
BILLING_HEADERS = {"Authorization": f"Bearer {samples.BILLING_TOKEN}", "Content-Type": "application/json"}
FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


@dataclass(frozen=True)
class Delivery:
    path: str
    body: bytes
    notification_type: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def alerts(self) -> bool:
        return self.notification_type in ALERT_TYPES


def _json_number(value: object) -> object:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(type(value).__name__)


def route_paths() -> dict[str, str]:
    """Each route's path by its function's name without `Function` (`UnPaidInvoice`: `/billing/unpaid-invoice`)."""
    return {route.function.removesuffix("Function"): route.path for route in template.routes()}


def distinct_deliveries(count: int, run: str = "load") -> list[Delivery]:
    """`count` deliveries, each its own notification: the 8 billing types with fresh ids in turn,
    and every ninth an ONAPPPAYMENT of the sample portal with its own `ts` (form-encoded, as on
    the wire). `run` keeps the ids of separate runs apart."""
    paths = route_paths()
    kinds = sorted(seeds.billing_seeds().items())
    deliveries = []
    for number in range(count):
        turn = number % (len(kinds) + 1)
        if turn == len(kinds):
            body = samples.bitrix24_payment_body()
            body["ts"] = str(1_700_000_000 + number)
            deliveries.append(
                Delivery(paths["AppPayment"], php_form_encode(body).encode(), "ONAPPPAYMENT", FORM_HEADERS)
            )
            continue
        kind, seed = kinds[turn]
        body = {**seed, "id": f"{run}-{number}"}
        deliveries.append(Delivery(paths[kind], json.dumps(body, default=_json_number).encode(), kind, BILLING_HEADERS))
    return deliveries
