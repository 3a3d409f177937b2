"""Where each customer account stands, projected from its billing notifications.

The view is a pure function of the SET of notifications received: any order, any duplicates,
the same view. Each notification moves some parts of its account (the rules, one line per part,
are in docs/accounts.md); each part keeps, per aspect, what the newest notification said, newest
by `original_event_date` as an instant, ties broken by notification id (the `stamp`). An invoice
keeps its aspects side by side (issued, unpaid, paid) and its status is derived when read: paid
if a payment names it, else unpaid if a notice does, else issued. Nothing in the view is a time
of ours (receipt, processing): only what the notifications said.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from billing_webhooks.data import accounts as table

PROFILE, STATE, TRIAL = "profile", "state", "trial"
CURRENT = "current"  # the one aspect of a part that has only one
INVOICE_ASPECTS = ("issued", "unpaid", "paid")
BALANCE_ASPECTS = ("payment", "usage")

# (part, aspect, what the view keeps of it)
Move = tuple[str, str, dict[str, Any]]


def stamp(record: dict[str, Any]) -> str:
    """Orders notifications: `event_time` (UTC, fixed width, sortable as text) then the id."""
    return f"{record['event_time']}|{record['notification_id']}"


def _day_after(moment: Any, days: Any) -> str | None:
    try:
        return (datetime.fromisoformat(str(moment)) + timedelta(days=int(days))).date().isoformat()
    except (TypeError, ValueError, OverflowError):
        return None


def _period(period: Any) -> dict[str, Any]:
    period = period if isinstance(period, dict) else {}
    return {"state": period.get("state"), "date_from": period.get("date_from"), "date_to": period.get("date_to")}


def moves(record: dict[str, Any]) -> list[Move]:
    """The parts a stored billing notification moves, and to what."""
    payload, kind = record["payload"], record["notification_type"]
    details = payload.get("details") if isinstance(payload.get("details"), dict) else {}
    found: list[Move] = [(PROFILE, CURRENT, {
        "account_code": payload.get("account_code"), "currency": payload.get("curr_code"),
        "language": payload.get("lang_code"),
    })]
    if kind == "AccountStateChange":
        found.append((STATE, CURRENT, {**_period(details.get("new_state")), "reason": details.get("reason"),
                                        "previous_state": _period(details.get("prev_state"))["state"]}))
    elif kind == "ProductStateChange" and details.get("sold_product_id") is not None:
        found.append((f"product#{details['sold_product_id']}", CURRENT, {
            "sold_product_id": details["sold_product_id"], **_period(details.get("new_state")),
            **{name: details.get(name) for name in ("action", "product_id", "product_name", "product_type",
                                                    "product_code")},
        }))
    elif kind in ("InvoiceForNewPeriod", "InvoiceForNewProduct") and details.get("invoice_id") is not None:
        found.append((f"invoice#{details['invoice_id']}", "issued", {
            "kind": kind, **{name: details.get(name) for name in ("invoice_type", "invoice_file", "date_from",
                                                                  "date_to", "Url_to_pay")},
        }))
    elif kind == "UnPaidInvoice" and details.get("invoice_id") is not None:
        found.append((f"invoice#{details['invoice_id']}", "unpaid", {
            **{name: details.get(name) for name in ("days_not_paid", "days_before_blocking", "payment_due_date",
                                                    "statement_date")},
            "blocking_on": _day_after(payload.get("original_event_date"), details.get("days_before_blocking")),
        }))
    elif kind == "NewPayment":
        paid = {name: details.get(name) for name in ("payment_id", "amount", "channel")}
        invoices = details.get("invoice_id") if isinstance(details.get("invoice_id"), list) else []
        found += [(f"invoice#{invoice_id}", "paid", {**paid, "paid_at": payload.get("original_event_date")})
                  for invoice_id in invoices]
        if details.get("balance_name") is not None:
            found.append((f"balance#{details['balance_name']}", "payment", {
                "value": details.get("balance_after"), "balance_before": details.get("balance_before"), **paid,
            }))
    elif kind == "PercentOfBalanceUsed" and details.get("balance") is not None:
        found.append((f"balance#{details['balance']}", "usage", {
            "value": details.get("current_value"),
            **{name: details.get(name) for name in ("start_value", "used_percentage")},
        }))
    elif kind == "TrialReminder":
        found.append((TRIAL, CURRENT, {
            **{name: details.get(name) for name in ("days_left", "start_date", "current_date")},
            "ends_on": _day_after(details.get("current_date"), details.get("days_left")),
        }))
    return found


def project(record: dict[str, Any], *, rewrite: bool = False) -> int:
    """Move the account's parts by one stored notification; how many aspects it moved. A
    notification already applied (or older than what a part holds) moves nothing: `rewrite`
    writes its own aspects again, for a rebuild under changed rules, still never backwards."""
    if record.get("source") != "billing":
        return 0
    moved = 0
    for part, aspect, value in moves(record):
        value = {**value, "stamp": stamp(record), "notification_id": record["notification_id"],
                 "event_time": record["event_time"]}
        moved += table.advance(record["account_key"], part, aspect, value, rewrite=rewrite)
    return moved


# --- the view, folded from the parts ---

def _sorted(value: Any) -> Any:
    """DynamoDB keeps no order of a map's keys: the view sorts them, so that it reads the same always."""
    if isinstance(value, str):  # most values: first
        return value
    if isinstance(value, dict):
        return {name: _sorted(value[name]) for name in sorted(value)}
    if isinstance(value, list):
        return [_sorted(child) for child in value]
    return value


def _shown(aspect: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if aspect is None else {name: _sorted(aspect[name]) for name in sorted(aspect) if name != "stamp"}


def _id_order(part: str) -> tuple[bool, Any]:
    """Numbered parts by number, named ones (balances) by name after them."""
    key = _number(part.partition("#")[2])
    return (isinstance(key, str), key)


def view(account_id: int | str, parts: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The account as the read API answers it; None when no notification named it."""
    found = {item["part"]: item for item in parts}
    if not found:
        return None
    profile = found.get(PROFILE, {}).get(CURRENT) or {}
    invoices, products, balances = [], [], []
    for part in sorted(found, key=_id_order):
        item, (kind, _, key) = found[part], part.partition("#")
        if kind == "invoice":
            aspects = {name: _shown(item.get(name)) for name in INVOICE_ASPECTS}
            status = "paid" if aspects["paid"] else "unpaid" if aspects["unpaid"] else "issued"
            invoices.append({"invoice_id": _number(key), "status": status, **aspects})
        elif kind == "product":
            products.append(_shown(item[CURRENT]))
        elif kind == "balance":
            aspects = {name: _shown(item.get(name)) for name in BALANCE_ASPECTS}
            newest = max((item[name] for name in BALANCE_ASPECTS if name in item), key=lambda aspect: aspect["stamp"])
            balances.append({"name": key, "value": newest.get("value"), "as_of": newest["event_time"], **aspects})
    return {
        "account_id": _number(str(account_id)),
        "account_code": profile.get("account_code"),
        "currency": profile.get("currency"),
        "language": profile.get("language"),
        "state": _shown(found.get(STATE, {}).get(CURRENT)),
        "products": products,
        "invoices": invoices,
        "balances": balances,
        "trial": _shown(found.get(TRIAL, {}).get(CURRENT)),
    }


def _number(key: str) -> int | str:
    return int(key) if key.lstrip("-").isdigit() else key


def account_key(account_id: int | str) -> str:
    return f"billing#{account_id}"


def show(account_id: int | str) -> dict[str, Any] | None:
    """The account's view, read part by part (one Query per page)."""
    return view(account_id, table.parts(account_key(account_id)))


