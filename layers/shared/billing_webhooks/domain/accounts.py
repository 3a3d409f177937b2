"""Where each customer account stands, projected from its billing notifications.

The view is a pure function of the SET of notifications received: any order, any duplicates,
the same view. Each notification moves some parts of its account (the rules, one line per part,
are in docs/accounts.md); each part keeps, per aspect, what the newest notification said. Newest
is a total order of records, the `stamp`: `original_event_date` as an instant, then notification
id, type and payload digest, so two distinct records never tie. An invoice keeps its aspects side
by side (issued, unpaid, paid) and its status is derived when read: paid if a payment names it,
else unpaid if a notice does, else issued. Nothing in the view is a time of ours (receipt,
processing): only what the notifications said.

Names (balance names, invoice and product ids) are kept as sent; a part's key is bounded whatever
the name (`part_key`), and lists are read a page at a time, so every answer is bounded however
large the account grows.
"""

import hashlib
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from billing_webhooks.data import accounts as table
from billing_webhooks.errors import ServiceUnavailable

PROFILE, STATE, TRIAL = "profile", "state", "trial"
CURRENT = "current"  # the one aspect of a part that has only one
INVOICE, PRODUCT, BALANCE = "invoice", "product", "balance"
INVOICE_ASPECTS = ("issued", "unpaid", "paid")
BALANCE_ASPECTS = ("payment", "usage")
# The lists an account grows without bound, each read a page at a time: answer key -> part kind.
LISTS = {"invoices": INVOICE, "products": PRODUCT, "balances": BALANCE}
PAGE = 20  # of each list in GET /accounts/{id}
OPEN_PAGE = 100  # of the open invoices in GET /accounts/{id}
# A name up to this many UTF-8 bytes is its own key; a longer one is clipped and given its digest.
NAME_KEY_BYTES = 200
FAN_OUT_THREADS = 10  # botocore keeps 10 connections: a notification moving more parts writes them side by side
_COMPLEMENT = str.maketrans("0123456789", "9876543210")


class Move(NamedTuple):
    part: str
    aspect: str
    value: dict[str, Any]
    name: Any = None  # the listed thing's name as sent (None for the singles)


def stamp(record: dict[str, Any]) -> str:
    """The record's place in the total order: `event_time` (UTC, fixed width), id, type, payload
    digest. Distinct records have distinct stamps: the time and the digest are fixed width and a
    type holds no `|`, so the text reads back one way only; (id, type) is the record's key."""
    return "|".join(
        (
            record["event_time"],
            record["notification_id"],
            record["notification_type"],
            record.get("payload_sha256") or "",
        )
    )


def _whole(name: Any) -> Any:
    """A number read back from DynamoDB (a Decimal off a stream) is the int it was sent as."""
    if isinstance(name, Decimal) and name.is_finite() and name == name.to_integral_value():
        return int(name)
    return name


def part_key(kind: str, name: Any) -> str:
    """The bounded sort key of a listed thing. Whole numbers (an `int` on the wire) sort by value,
    before any text; text sorts by its code points, a long one by its first bytes then digest."""
    name = _whole(name)
    if isinstance(name, int) and not isinstance(name, bool):
        digits = str(abs(name))  # at most 126 digits: DynamoDB holds no larger number
        if name < 0:  # more digits, smaller; then the complement of the digits
            return f"{kind}#0{999 - len(digits):03d}{digits.translate(_COMPLEMENT)}"
        return f"{kind}#1{len(digits):03d}{digits}"
    text = str(name)
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) <= NAME_KEY_BYTES:
        return f"{kind}#s{text}"
    clipped = encoded[: NAME_KEY_BYTES // 2].decode("utf-8", "ignore")
    return f"{kind}#t{clipped}~{hashlib.sha256(encoded).hexdigest()}"


def _day_after(moment: Any, days: Any) -> str | None:
    try:
        return (datetime.fromisoformat(str(moment)) + timedelta(days=int(days))).date().isoformat()
    except (TypeError, ValueError, OverflowError):
        return None


def _period(period: Any) -> dict[str, Any]:
    period = period if isinstance(period, dict) else {}
    return {"state": period.get("state"), "date_from": period.get("date_from"), "date_to": period.get("date_to")}


def _listed(kind: str, name: Any, aspect: str, value: dict[str, Any]) -> Move:
    return Move(part_key(kind, name), aspect, value, _whole(name))


def moves(record: dict[str, Any]) -> list[Move]:
    """The parts a stored billing notification moves, and to what."""
    payload, kind = record["payload"], record["notification_type"]
    details = payload.get("details") if isinstance(payload.get("details"), dict) else {}
    found = [
        Move(
            PROFILE,
            CURRENT,
            {
                "account_code": payload.get("account_code"),
                "currency": payload.get("curr_code"),
                "language": payload.get("lang_code"),
            },
        )
    ]
    if kind == "AccountStateChange":
        found.append(
            Move(
                STATE,
                CURRENT,
                {
                    **_period(details.get("new_state")),
                    "reason": details.get("reason"),
                    "previous_state": _period(details.get("prev_state"))["state"],
                },
            )
        )
    elif kind == "ProductStateChange" and details.get("sold_product_id") is not None:
        found.append(
            _listed(
                PRODUCT,
                details["sold_product_id"],
                CURRENT,
                {
                    "sold_product_id": details["sold_product_id"],
                    **_period(details.get("new_state")),
                    **{
                        name: details.get(name)
                        for name in ("action", "product_id", "product_name", "product_type", "product_code")
                    },
                },
            )
        )
    elif kind in ("InvoiceForNewPeriod", "InvoiceForNewProduct") and details.get("invoice_id") is not None:
        found.append(
            _listed(
                INVOICE,
                details["invoice_id"],
                "issued",
                {
                    "kind": kind,
                    **{
                        name: details.get(name)
                        for name in ("invoice_type", "invoice_file", "date_from", "date_to", "Url_to_pay")
                    },
                },
            )
        )
    elif kind == "UnPaidInvoice" and details.get("invoice_id") is not None:
        found.append(
            _listed(
                INVOICE,
                details["invoice_id"],
                "unpaid",
                {
                    **{
                        name: details.get(name)
                        for name in ("days_not_paid", "days_before_blocking", "payment_due_date", "statement_date")
                    },
                    "blocking_on": _day_after(payload.get("original_event_date"), details.get("days_before_blocking")),
                },
            )
        )
    elif kind == "NewPayment":
        paid = {name: details.get(name) for name in ("payment_id", "amount", "channel")}
        invoices = named if isinstance(named := details.get("invoice_id"), list) else []
        found += [
            _listed(INVOICE, invoice_id, "paid", {**paid, "paid_at": payload.get("original_event_date")})
            for invoice_id in dict.fromkeys(_whole(invoice_id) for invoice_id in invoices)
        ]
        if details.get("balance_name") is not None:
            found.append(
                _listed(
                    BALANCE,
                    details["balance_name"],
                    "payment",
                    {
                        "value": details.get("balance_after"),
                        "balance_before": details.get("balance_before"),
                        **paid,
                    },
                )
            )
    elif kind == "PercentOfBalanceUsed" and details.get("balance") is not None:
        found.append(
            _listed(
                BALANCE,
                details["balance"],
                "usage",
                {
                    "value": details.get("current_value"),
                    **{name: details.get(name) for name in ("start_value", "used_percentage")},
                },
            )
        )
    elif kind == "TrialReminder":
        found.append(
            Move(
                TRIAL,
                CURRENT,
                {
                    **{name: details.get(name) for name in ("days_left", "start_date", "current_date")},
                    "ends_on": _day_after(details.get("current_date"), details.get("days_left")),
                },
            )
        )
    return found


def project(record: dict[str, Any], *, rewrite: bool = False) -> int:
    """Move the account's parts by one stored notification; how many aspects it moved. A
    notification already applied (or older than what a part holds) moves nothing: `rewrite`
    writes its own aspects again, for a rebuild under changed rules, still never backwards."""
    if record.get("source") != "billing":
        return 0
    marks = {"stamp": stamp(record), "notification_id": record["notification_id"], "event_time": record["event_time"]}

    def apply(move: Move) -> bool:
        moved = table.advance(
            record["account_key"],
            move.part,
            move.aspect,
            {**move.value, **marks},
            name=move.name,
            rewrite=rewrite,
            closes=move.aspect == "paid",
        )
        if move.aspect == "unpaid":  # whether or not this notice was newest: a crash may have left it unlisted
            table.open_if_unpaid(record["account_key"], move.part)
        return moved

    found = moves(record)
    if len(found) <= FAN_OUT_THREADS:  # nearly every notification: a part or two
        return sum(map(apply, found))
    # A payment naming thousands of invoices: its writes side by side, not one after another
    # (docs/performance.md). Loaded only then: the pool costs a few ms of import.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(FAN_OUT_THREADS) as pool:
        return sum(pool.map(apply, found))


class Unprojectable(Exception):
    """A stored record the view cannot take (it fails the same way every time): skipped, named."""


def project_or_skip(record: dict[str, Any], *, rewrite: bool = False) -> int:
    """`project`, with any failure but an outage (which a retry heals) raised as Unprojectable."""
    try:
        return project(record, rewrite=rewrite)
    except ServiceUnavailable:
        raise
    except Exception as error:  # a record of a shape no rule foresaw, a value DynamoDB refuses
        raise Unprojectable(
            f"{record.get('notification_type')!s:.64} {record.get('notification_id')!s:.256}: "
            f"{error.__class__.__name__}"
        ) from None


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


def shown_part(item: dict[str, Any]) -> dict[str, Any]:
    """One listed part (an invoice, a product, a balance) as the read API answers it."""
    kind = item["part"].partition("#")[0]
    if kind == INVOICE:
        aspects = {name: _shown(item.get(name)) for name in INVOICE_ASPECTS}
        status = "paid" if aspects["paid"] else "unpaid" if aspects["unpaid"] else "issued"
        # _whole: DynamoDB gives 100010 back as 1.0001E+5 (a reason would read "invoice_overdue: 1.0001E+5").
        return {"invoice_id": _whole(item.get("name")), "status": status, **aspects}
    if kind == PRODUCT:
        return _shown(item[CURRENT]) or {}
    aspects = {name: _shown(item.get(name)) for name in BALANCE_ASPECTS}
    newest = max((item[name] for name in BALANCE_ASPECTS if name in item), key=lambda aspect: aspect["stamp"])
    return {"name": item.get("name"), "value": newest.get("value"), "as_of": newest["event_time"], **aspects}


def account_key(account_id: int | str) -> str:
    return f"billing#{account_id}"


class Page(NamedTuple):
    items: list[dict[str, Any]]
    next_key: dict[str, Any] | None  # DynamoDB's key of where the next page starts


def listing(
    account_id: int, kind: str, *, limit: int, status: str | None = None, start_key: dict[str, Any] | None = None
) -> Page:
    """A page of the account's invoices, products or balances, in key order."""
    items, next_key = table.page(account_key(account_id), f"{kind}#", limit=limit, status=status, start_key=start_key)
    return Page([shown_part(item) for item in items], next_key)


def show(account_id: int) -> tuple[dict[str, Any], dict[str, Page]] | None:
    """The account's view and the first page of each list (for their cursors); None when no
    notification named it. Bounded: the singles, a page of each list, the open invoices up to
    OPEN_PAGE, and how many of each there are."""
    key = account_key(account_id)
    singles = {item["part"]: item for item in table.singles(key)}
    if PROFILE not in singles:  # every notification moves the profile
        return None
    profile = singles[PROFILE].get(CURRENT) or {}
    pages = {name: listing(account_id, kind, limit=PAGE) for name, kind in LISTS.items()}
    pages["open_invoices"] = listing(account_id, INVOICE, limit=OPEN_PAGE, status="unpaid")
    counts = {name: table.count(key, f"{kind}#") for name, kind in LISTS.items()}
    counts["open_invoices"] = (
        len(pages["open_invoices"].items)
        if pages["open_invoices"].next_key is None
        else table.count(key, f"{INVOICE}#", "unpaid")
    )
    view = {
        "account_id": account_id,
        "account_code": profile.get("account_code"),
        "currency": profile.get("currency"),
        "language": profile.get("language"),
        "state": _shown(singles.get(STATE, {}).get(CURRENT)),
        "trial": _shown(singles.get(TRIAL, {}).get(CURRENT)),
        **{name: page.items for name, page in pages.items()},
        "counts": counts,
    }
    return view, pages


def standing(account_id: int) -> dict[str, Any] | None:
    """What an entitlement's decision uses of an account, and no more: its state, its trial and its
    open invoices (up to OPEN_PAGE), in two Queries; None when no notification named it."""
    key = account_key(account_id)
    singles = {item["part"]: item for item in table.singles(key)}
    if PROFILE not in singles:
        return None
    return {
        "account_id": account_id,
        "state": _shown(singles.get(STATE, {}).get(CURRENT)),
        "trial": _shown(singles.get(TRIAL, {}).get(CURRENT)),
        "open_invoices": listing(account_id, INVOICE, limit=OPEN_PAGE, status="unpaid").items,
    }
