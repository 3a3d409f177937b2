"""The account view is a pure function of the set of notifications, proven by property (30
generated sets of billing records per run): any names, ids and storable numbers the models accept,
ids shared across types, equal event times; each set delivered in two random orders with
duplicates, rebuilt from a table whole, and rebuilt in segments a page at a time. Every read
answers 2xx; the four views are equal, and equal to a reference fold of the rules in
docs/accounts.md written here, apart from the code."""

import copy
import itertools
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local import seeds
from tests.integration.test_accounts import _all_pages

EXAMPLES = 30
ACCOUNT_IDS = itertools.count(940000, 10)
SCRATCH_TABLES = ("RebuildWholeTable", "RebuildSegmentsTable")
BASE = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
KINDS = (
    "AccountStateChange",
    "ProductStateChange",
    "InvoiceForNewPeriod",
    "InvoiceForNewProduct",
    "UnPaidInvoice",
    "NewPayment",
    "PercentOfBalanceUsed",
    "TrialReminder",
)

names = st.one_of(
    st.sampled_from(["Tasks", "Money_BYN", "²", "--1", "10", "9", ""]),
    st.text(min_size=1, max_size=40),
    st.text(alphabet="ab", min_size=1000, max_size=1100),
)
ids = st.one_of(st.sampled_from(["AxmLozMymJAO", "A", "A!", "a"]), st.text(min_size=1, max_size=20))
instants = st.sampled_from([BASE, BASE + timedelta(seconds=1), BASE + timedelta(days=2)])
offsets = st.sampled_from(["+00:00", "+02:00", "-05:00"])
numbers = st.one_of(
    st.integers(-(10**37), 10**37),
    st.decimals(
        allow_nan=False, allow_infinity=False, places=2, min_value=Decimal("-1E+30"), max_value=Decimal("1E+30")
    ),
)
small_ids = st.one_of(st.integers(1, 4), st.integers(-(10**37), 10**37))


@st.composite
def notifications(draw) -> dict:
    kind = draw(st.sampled_from(KINDS))
    body = copy.deepcopy(seeds.billing_seeds()[kind])
    when = draw(instants)
    offset = draw(offsets)
    local = when.astimezone(datetime.strptime(offset, "%z").tzinfo)
    body.update(
        {
            "id": draw(ids),
            "original_event_date": local.strftime("%Y-%m-%d %H:%M:%S ") + offset,
            "transfer_date": local.strftime("%Y-%m-%d %H:%M:%S ") + offset,
            "curr_code": draw(st.sampled_from(["EUR", "BYN"])),
        }
    )
    details = body["details"]
    if kind == "AccountStateChange":
        details["new_state"]["state"] = draw(st.sampled_from(["active", "blocked", "trial", "другое"]))
    elif kind == "ProductStateChange":
        details["sold_product_id"] = draw(small_ids)
        details["new_state"]["state"] = draw(st.sampled_from(["active", "suspended"]))
    elif kind in ("InvoiceForNewPeriod", "InvoiceForNewProduct", "UnPaidInvoice"):
        details["invoice_id"] = draw(small_ids)
    elif kind == "NewPayment":
        details.update(
            invoice_id=draw(st.lists(small_ids, max_size=3)),
            balance_name=draw(names),
            balance_after=draw(numbers),
            amount=draw(numbers),
        )
    elif kind == "PercentOfBalanceUsed":
        details.update(balance=draw(names), current_value=draw(numbers))
    else:
        details["days_left"] = draw(st.integers(0, 30))
    return body


def _records(bodies: list[dict], account_id: int) -> list[dict]:
    """Each body as the stored record of `account_id`; one record per (id, type), as the table keeps."""
    from billing_webhooks.data.notifications import build_record
    from billing_webhooks.models import billing

    found = {}
    for number, body in enumerate(bodies):
        body = {**body, "account_id": account_id}
        record = build_record(
            getattr(billing, body["type"]).model_validate(
                json.loads(json.dumps(body, default=str), parse_float=Decimal)
            ),
            BASE + timedelta(minutes=-number),
        )  # received in another order than they happened
        found.setdefault((record["notification_id"], record["notification_type"]), record)
    return list(found.values())


# --- the reference: the rules of docs/accounts.md, folded in plain Python ---


def _newest(records: list[dict]) -> dict:
    return max(
        records,
        key=lambda record: (
            record["event_time"],
            "|".join((record["notification_id"], record["notification_type"], record["payload_sha256"])),
        ),
    )


def reference(records: list[dict]) -> dict:
    details = lambda record: record["payload"]["details"]  # noqa: E731
    of = lambda *kinds: [record for record in records if record["notification_type"] in kinds]  # noqa: E731
    expected: dict = {"currency": _newest(records)["payload"]["curr_code"]}
    states = of("AccountStateChange")
    expected["state"] = details(_newest(states))["new_state"]["state"] if states else None
    trials = of("TrialReminder")
    expected["trial"] = details(_newest(trials))["days_left"] if trials else None
    products: dict = {}
    for record in of("ProductStateChange"):
        products.setdefault(details(record)["sold_product_id"], []).append(record)
    expected["products"] = {key: details(_newest(group))["new_state"]["state"] for key, group in products.items()}
    invoices: dict = {}
    for record in of("InvoiceForNewPeriod", "InvoiceForNewProduct", "UnPaidInvoice"):
        invoices.setdefault(details(record)["invoice_id"], set()).add(
            "unpaid" if record["notification_type"] == "UnPaidInvoice" else "issued"
        )
    for record in of("NewPayment"):
        for invoice_id in details(record)["invoice_id"]:
            invoices.setdefault(invoice_id, set()).add("paid")
    expected["invoices"] = {
        key: "paid" if "paid" in aspects else "unpaid" if "unpaid" in aspects else "issued"
        for key, aspects in invoices.items()
    }
    balances: dict = {}
    for record in of("NewPayment"):
        balances.setdefault(details(record)["balance_name"], []).append((record, details(record)["balance_after"]))
    for record in of("PercentOfBalanceUsed"):
        balances.setdefault(details(record)["balance"], []).append((record, details(record)["current_value"]))
    expected["balances"] = {
        name: max(
            group,
            key=lambda pair: (
                pair[0]["event_time"],
                "|".join((pair[0]["notification_id"], pair[0]["notification_type"], pair[0]["payload_sha256"])),
            ),
        )[1]
        for name, group in balances.items()
    }
    return expected


def observed(view: dict, lists: dict) -> dict:
    return {
        "currency": view["currency"],
        "state": (view["state"] or {}).get("state"),
        "trial": (view["trial"] or {}).get("days_left"),
        "products": {product["sold_product_id"]: product["state"] for product in lists["products"]},
        "invoices": {invoice["invoice_id"]: invoice["status"] for invoice in lists["invoices"]},
        "balances": {balance["name"]: balance["value"] for balance in lists["balances"]},
    }


@pytest.fixture(scope="module")
def scratch_tables(stack, dynamodb):
    """Two empty copies of NotificationsTable's key schema for the rebuilds to read."""
    from local import template

    spec = template.load()["Resources"]["NotificationsTable"]["Properties"]
    for name in SCRATCH_TABLES:
        dynamodb.create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=spec["KeySchema"],
            AttributeDefinitions=[
                attribute
                for attribute in spec["AttributeDefinitions"]
                if attribute["AttributeName"] in ("notification_id", "notification_type")
            ],
        )
    yield SCRATCH_TABLES
    for name in SCRATCH_TABLES:
        dynamodb.delete_table(TableName=name)


def _read(api, account_id: int) -> tuple[dict, dict]:
    """The view and every page of its lists, over HTTP: never a 5xx."""
    answer = requests.get(f"{api.url}/accounts/{account_id}", timeout=30)
    assert answer.status_code == 200, answer.text[:500]
    view = json.loads(answer.text, parse_float=Decimal)
    lists = {
        name: _all_pages(api, f"/accounts/{account_id}/{name}", name, limit=7)
        for name in ("invoices", "products", "balances")
    }
    for status in ("unpaid", "paid", "issued"):
        _all_pages(api, f"/accounts/{account_id}/invoices", "invoices", limit=3, query=f"&status={status}")
    view.pop("account_id")
    view.pop("cursors")  # cursors name the account
    return view, lists


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(bodies=st.lists(notifications(), min_size=1, max_size=8), data=st.data())
def test_any_set_in_any_order_with_duplicates_and_any_rebuild_gives_one_view_equal_to_the_rules(
    api, dynamodb, scratch_tables, monkeypatch, bodies, data
):
    from billing_webhooks.data.toolkit import to_item
    from billing_webhooks.domain import accounts
    from billing_webhooks.jobs.account_rebuild import rebuild_accounts
    from billing_webhooks.settings import settings as read_settings

    notifications_table = read_settings().table_name
    base = next(ACCOUNT_IDS)  # a fresh account per example and order, shrinking included
    views = []
    for offset in (0, 1):  # two delivery orders, with duplicates
        records = _records(bodies, base + offset)
        delivered = records + data.draw(st.lists(st.sampled_from(records), max_size=4))
        for record in data.draw(st.permutations(delivered)):
            accounts.project(record)
        views.append(_read(api, base + offset))
    for offset, (table, options) in enumerate(
        zip(scratch_tables, ({}, {"total_segments": 3, "page_size": 1}), strict=False), 2
    ):
        for item in dynamodb.scan(TableName=table)["Items"]:
            dynamodb.delete_item(
                TableName=table, Key={name: item[name] for name in ("notification_id", "notification_type")}
            )
        for record in _records(bodies, base + offset):
            dynamodb.put_item(TableName=table, Item=to_item(record))
        monkeypatch.setenv("TABLE_NAME", table)
        read_settings.cache_clear()
        for segment in range(options.get("total_segments", 1)):
            assert rebuild_accounts({**options, "segment": segment})["resume"] is None
        monkeypatch.setenv("TABLE_NAME", notifications_table)
        read_settings.cache_clear()
        views.append(_read(api, base + offset))
    assert all(view == views[0] for view in views[1:])
    assert observed(*views[0]) == reference(_records(bodies, base))
