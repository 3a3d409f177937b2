"""The billing system's side of `make simulate`: a portal's billing account, coded with the portal's
member_id (so linked to it by default, docs/entitlements.md), its monthly invoices paid on time,
late or never, and the notifications it posts about them, at once or late. Each account keeps the
truth those notifications tell: whether, at an instant, the account refuses its portal (blocked,
or an unpaid invoice past its blocking day: the decision table's rows 5 and 7).

The notifications are the seed payloads (events/seeds/) with this account's ids and instants.
"""

import functools
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from local import seeds

DAY, HOUR = 86400, 3600
PERIOD_DAYS = 30
UNPAID_NOTICE_DAYS = 5  # an invoice unpaid this long after it was issued: UnPaidInvoice
LATE_SHARE, LATE_MOST_SECONDS = 0.1, 6 * HOUR  # a notification delivered late, by up to this long


@functools.cache
def _seed(kind: str) -> dict[str, Any]:
    return seeds.billing_seeds()[kind]


def wire_time(instant: float) -> str:
    """A billing notification's instant, as the seeds write it (in UTC here)."""
    return datetime.fromtimestamp(instant, UTC).strftime("%Y-%m-%d %H:%M:%S +00:00")


def day_start(instant: float, days_after: int) -> float:
    """00:00 UTC of the day `days_after` days after the instant's: an invoice's blocking day."""
    day = datetime.fromtimestamp(instant, UTC).date() + timedelta(days=days_after)
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


@dataclass
class Notification:
    """One notification the billing system posts: `at` its own instant, `delivered_at` when it
    reaches the stack (late ones later)."""

    kind: str
    body: dict[str, Any]
    at: float
    delivered_at: float


@dataclass
class Account:
    account_id: int
    code: str  # the portal's member_id
    rng: random.Random
    invoices: int = 0
    states: list[tuple[float, str]] = field(default_factory=list)  # (since, state), by the billing system
    # invoice id -> (its blocking day's start, paid at): an invoice with an UnPaidInvoice notice
    unpaid: dict[int, tuple[float, float | None]] = field(default_factory=dict)
    sent: list[Notification] = field(default_factory=list)

    def refuses(self, now: float) -> bool:
        """What the billing system says at `now`: blocked, or an unpaid invoice past its blocking day."""
        state = self.state(now)
        overdue = any(blocks <= now and (paid is None or paid > now) for blocks, paid in self.unpaid.values())
        return state == "Blocked" or overdue

    def late_at(self, now: float) -> bool:
        """Whether a notification that already happened at `now` has not reached the stack an hour
        before (the hour the simulation samples in)."""
        return any(sent.at <= now < sent.delivered_at + HOUR for sent in self.sent)

    def told(self, now: float, start: float) -> list[str]:
        """The last ten days' notifications, for whoever reads an unexplained hour: each kind, its
        invoice, and the simulated hours it happened and was delivered at."""
        return [
            f"{sent.kind} {sent.body['details'].get('invoice_id', '')} at h{(sent.at - start) / HOUR:.1f}"
            f" delivered h{(sent.delivered_at - start) / HOUR:.1f}"
            for sent in self.sent
            if now - 10 * DAY <= sent.at <= now
        ]

    # --- what the billing system does, each returning the notifications it posts -------------

    def opened(self, at: float) -> list[Notification]:
        self.states.append((at - 14 * DAY, "Test"))  # its two weeks of test, before the portal's install
        return [self._state(at, "Active")]

    def issue(self, at: float) -> tuple[int, str, list[Notification]]:
        """A new period's invoice: its id, how it will be paid (on_time, late, never) and the notice."""
        self.invoices += 1
        invoice = self.invoices
        pays = self.rng.choices(("on_time", "late", "never"), weights=(75, 20, 5))[0]
        details = {
            "invoice_file": f"https://billing.example/invoices/{self.account_id}/{invoice}.pdf",
            "invoice_type": "regular",
            "invoice_id": invoice,
            "date_from": wire_time(at),
            "date_to": wire_time(at + PERIOD_DAYS * DAY),
            "Url_to_pay": [
                {
                    "PaymentProfile": "PayPal_EUR",
                    "PaymentSystem": "PayPal",
                    "URL": f"https://billing.example/pay/{self.account_id}/{invoice}",
                }
            ],
        }
        return invoice, pays, [self._send("InvoiceForNewPeriod", at, details)]

    def unpaid_notice(self, at: float, invoice: int, issued_at: float) -> list[Notification]:
        before_blocking = self.rng.randint(3, 10)
        self.unpaid[invoice] = (day_start(at, before_blocking), None)
        details = {
            "invoice_id": invoice,
            "statement_date": wire_time(issued_at),
            "payment_due_date": wire_time(issued_at + UNPAID_NOTICE_DAYS * DAY),
            "days_not_paid": UNPAID_NOTICE_DAYS,
            "days_before_blocking": before_blocking,
        }
        return [self._send("UnPaidInvoice", at, details)]

    def pay(self, at: float, invoice: int) -> list[Notification]:
        if invoice in self.unpaid:
            self.unpaid[invoice] = (self.unpaid[invoice][0], at)
        details = {
            "amount": 100,
            "balance_after": 0,
            "balance_before": -100,
            "balance_name": "Money_EUR",
            "channel": "https",
            "invoice_id": [invoice],
            "paym_ext_id": f"p{self.account_id}-{invoice}",
            "payment_id": self.account_id * 1000 + invoice,
        }
        sent = [self._send("NewPayment", at, details)]
        if self.state(at) == "Blocked":
            sent.append(self._state(at, "Active"))
        return sent

    def block(self, at: float) -> list[Notification]:
        return [self._state(at, "Blocked")]

    def blocking_day(self, invoice: int) -> float:
        return self.unpaid[invoice][0]

    def state(self, at: float) -> str:
        return next((state for since, state in reversed(self.states) if since <= at), "Test")

    def _state(self, at: float, new: str) -> Notification:
        since, previous = self.states[-1]
        self.states.append((at, new))
        details = {
            "reason": "trigger",
            "new_state": {"state": new, "date_from": wire_time(at), "date_to": ""},
            "prev_state": {"state": previous, "date_from": wire_time(since), "date_to": wire_time(at)},
        }
        return self._send("AccountStateChange", at, details)

    def _send(self, kind: str, at: float, details: dict[str, Any]) -> Notification:
        late = self.rng.uniform(60, LATE_MOST_SECONDS) if self.rng.random() < LATE_SHARE else 0.0
        body = {
            **_seed(kind),
            "id": f"sim-{self.account_id}-{len(self.sent) + 1}",
            "type": kind,
            "account_id": self.account_id,
            "account_code": self.code,
            "curr_code": "EUR",
            "lang_code": "en",
            "original_event_date": wire_time(at),
            "transfer_date": wire_time(at + late),
            "details": details,
        }
        notification = Notification(kind, body, at, at + late)
        self.sent.append(notification)
        return notification
