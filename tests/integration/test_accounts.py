"""The account view: order-proof, idempotent, rebuildable, bounded, readable over HTTP and from the CLI."""

import base64
import copy
import json
import os
import random
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import requests

from local import seeds, template
from tests.conftest import Table, load_event

BILLING_AUTH = {"Authorization": "Bearer local-billing-token", "Content-Type": "application/json"}
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def accounts_table(stack, dynamodb) -> Table:
    return Table(dynamodb, "AccountsTable", ("account_key", "part"))


def _notification(kind: str, number: int, when: datetime, account_id: int, **details) -> dict:
    body = copy.deepcopy(seeds.billing_seeds()[kind])
    body.update(
        {
            "id": f"{kind}-{number}",
            "account_id": account_id,
            "original_event_date": when.strftime("%Y-%m-%d %H:%M:%S"),
            "transfer_date": when.strftime("%Y-%m-%d %H:%M:%S"),
        }
    )
    body["details"].update(details)
    return body


def history(account_id: int) -> list[dict]:
    """34 notifications of one account over 40 days: states, products, invoices issued, unpaid and
    paid, balances, a trial; two pairs share an event time (ties go by id)."""
    found, day = [], lambda n: START + timedelta(days=n)  # noqa: E731
    for number, state in enumerate(["trial", "active", "blocked", "active", "active"]):
        found.append(
            _notification(
                "AccountStateChange",
                number,
                day(number * 8),
                account_id,
                new_state={"state": state, "date_from": day(number * 8).strftime("%Y-%m-%d %H:%M:%S"), "date_to": ""},
            )
        )
    for number in range(6):
        found.append(
            _notification(
                "ProductStateChange",
                number,
                day(number * 5 + 1),
                account_id,
                sold_product_id=700 + number % 2,
                new_state={
                    "state": ["active", "suspended", "active"][number % 3],
                    "date_from": day(number * 5 + 1).strftime("%Y-%m-%d %H:%M:%S"),
                    "date_to": "",
                },
            )
        )
    for number in range(6):
        kind = "InvoiceForNewPeriod" if number % 3 else "InvoiceForNewProduct"
        found.append(_notification(kind, number, day(number * 6 + 2), account_id, invoice_id=30 + number))
    for number in range(6):
        found.append(
            _notification(
                "UnPaidInvoice",
                number,
                day(number * 6 + 4),
                account_id,
                invoice_id=30 + number % 4,
                days_not_paid=number + 1,
                days_before_blocking=10 - number,
            )
        )
    for number in range(4):
        paid = [30 + number] if number < 3 else [30, 31]  # the last payment names paid invoices again
        found.append(
            _notification(
                "NewPayment",
                number,
                day(number * 9 + 5),
                account_id,
                invoice_id=paid,
                balance_after=Decimal(100 + number),
                balance_name="Money_BYN",
                payment_id=900 + number,
            )
        )
    for number in range(4):
        found.append(
            _notification(
                "PercentOfBalanceUsed",
                number,
                day(number * 9 + 5 if number < 2 else number * 7),
                account_id,
                balance="Money_BYN" if number % 2 else "Tasks",
                current_value=Decimal(50 - number),
                used_percentage=Decimal(number * 10),
            )
        )
    for number in range(3):
        found.append(
            _notification(
                "TrialReminder",
                number,
                day(number * 2 + 3),
                account_id,
                days_left=7 - number,
                current_date=day(number * 2 + 3).strftime("%Y-%m-%d %H:%M:%S"),
            )
        )
    return found


def _records(bodies: list[dict]) -> list[dict]:
    from billing_webhooks.data.notifications import build_record
    from billing_webhooks.models import billing

    return [build_record(getattr(billing, body["type"]).model_validate(body), START) for body in bodies]


def _view(account_id: int) -> dict:
    from billing_webhooks.http import reads

    return reads.account(str(account_id))


def _view_json(account_id: int) -> str:
    from billing_webhooks.http.reads import to_json

    view = _view(account_id)
    assert view.pop("account_id") == account_id
    return to_json(view)


def _project_all(records: list[dict]) -> None:
    from billing_webhooks.domain import accounts

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(accounts.project, records))


def test_any_order_with_any_duplicates_gives_the_same_view_byte_for_byte(stack, accounts_table):
    in_order = _records(history(810000))
    assert len(in_order) >= 30
    for record in in_order:
        from billing_webhooks.domain import accounts

        accounts.project(record)
    expected = _view_json(810000)
    shuffler = random.Random(20261125)
    for account_id in range(810001, 810021):
        records = _records(history(account_id))
        delivered = records + shuffler.sample(records, shuffler.randint(1, len(records)))  # duplicates
        shuffler.shuffle(delivered)
        for record in delivered:
            accounts.project(record)
        assert _view_json(account_id) == expected, account_id
    view = json.loads(expected)
    assert view["state"]["state"] == "active" and view["state"]["notification_id"] == "AccountStateChange-4"
    invoices = {invoice["invoice_id"]: invoice for invoice in view["invoices"]}
    assert [invoices[number]["status"] for number in range(30, 36)] == ["paid"] * 3 + ["unpaid", "issued", "issued"]
    assert invoices[30]["unpaid"]["days_not_paid"] == 5 and invoices[33]["unpaid"]["blocking_on"]
    assert invoices[30]["paid"]["payment_id"] == 903  # the newest payment naming it
    assert [balance["name"] for balance in view["balances"]] == ["Money_BYN", "Tasks"]
    assert view["trial"]["days_left"] == 5 and view["trial"]["ends_on"] == "2026-03-13"
    assert [product["sold_product_id"] for product in view["products"]] == [700, 701]
    assert "received_at" not in expected and "stamp" not in expected


def test_a_paid_invoice_stays_paid_whatever_comes_after(stack, accounts_table):
    from billing_webhooks.domain import accounts

    paid = _notification("NewPayment", 1, START, 820000, invoice_id=[41])
    later_notice = _notification("UnPaidInvoice", 2, START + timedelta(days=3), 820000, invoice_id=41)
    later_issue = _notification("InvoiceForNewPeriod", 3, START + timedelta(days=4), 820000, invoice_id=41)
    for record in _records([paid, later_notice, later_issue]):
        accounts.project(record)
    (invoice,) = _view(820000)["invoices"]
    assert invoice["status"] == "paid" and invoice["unpaid"] and invoice["issued"]


def test_an_invoice_id_ending_in_zero_comes_back_as_the_whole_number_it_was(stack, accounts_table):
    from billing_webhooks.domain import accounts

    paid = _notification("NewPayment", 1, START, 830000, invoice_id=[100010, 100011, 2000])
    for record in _records([paid]):
        accounts.project(record)
    # DynamoDB hands 100010 back as 1.0001E+5: read as JSON, that is the float 100010.0.
    ids = [invoice["invoice_id"] for invoice in json.loads(_view_json(830000))["invoices"]]
    assert ids == [2000, 100010, 100011] and {type(invoice_id) for invoice_id in ids} == {int}, ids
    # As the entitlement's reason names an overdue invoice: its digits, not 1.0001E+5.
    listed = accounts.listing(830000, accounts.INVOICE, limit=10).items
    assert [str(invoice["invoice_id"]) for invoice in listed] == ["2000", "100010", "100011"]


def test_the_read_api_writes_a_whole_number_dynamodb_gave_with_an_exponent_as_its_digits():
    from billing_webhooks.http.reads import to_json

    # A payment of 2000 comes back from DynamoDB as 2E+3; money keeps every digit it was sent with.
    assert to_json({"amount": Decimal("2E+3"), "balance": Decimal("-138.480"), "tiny": Decimal("1E-7")}) == (
        '{"amount":2000,"balance":-138.480,"tiny":1E-7}'
    )


def _stream_event(records: list[dict]) -> dict:
    from billing_webhooks.data.toolkit import to_item

    return {
        "Records": [
            {
                "eventID": str(number),
                "eventName": "INSERT",
                "eventSource": "aws:dynamodb",
                "eventVersion": "1.1",
                "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:dynamodb:stream",
                "dynamodb": {
                    "NewImage": to_item(record),
                    "SequenceNumber": str(1000 + number),
                    "StreamViewType": "NEW_IMAGE",
                    "SizeBytes": 1,
                },
            }
            for number, record in enumerate(records)
        ]
    }


def test_a_batch_that_fails_half_way_and_is_retried_changes_nothing_twice(stack, accounts_table, monkeypatch):
    from billing_webhooks.data import accounts as table
    from billing_webhooks.errors import ServiceUnavailable
    from local.server import LambdaContext, LocalFunction

    projector = LocalFunction(template.function("AccountProjectorFunction"))
    records = _records(history(830000))
    writes, calls, real = [], [0], table.advance

    def failing_half_way(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 40:
            raise ServiceUnavailable("DynamoDB went away")  # as the data layer raises any fault
        written = real(*args, **kwargs)
        if written:
            writes.append((args[1], args[2], args[3]["notification_id"]))
        return written

    monkeypatch.setattr(table, "advance", failing_half_way)
    answer = projector.handler(_stream_event(records), LambdaContext("AccountProjectorFunction"))
    failed = [item["itemIdentifier"] for item in answer["batchItemFailures"]]
    assert len(failed) == 1
    first_failed = int(failed[0]) - 1000
    # As Lambda does: the batch again, from the first failed record (those before it are done).
    retried = {"Records": _stream_event(records)["Records"][first_failed:]}
    assert projector.handler(retried, LambdaContext("AccountProjectorFunction"))["batchItemFailures"] == []
    assert writes and len(writes) == len(set(writes))  # no aspect written twice by one notification
    after_retry = _view_json(830000)
    monkeypatch.setattr(table, "advance", real)
    from billing_webhooks.domain import accounts

    for record in records:  # the view a clean pass gives, rules and all
        accounts.project(record, rewrite=True)
    assert _view_json(830000) == after_retry
    assert json.loads(after_retry)["state"]["notification_id"] == "AccountStateChange-4"


def test_the_view_rebuilt_from_the_notifications_table_equals_the_live_one(api, table, accounts_table, projector):
    from billing_webhooks.jobs.account_rebuild import rebuild_accounts

    bodies = history(840000)
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda body: requests.post(
                    f"{api.url}/billing/{_route(body['type'])}",
                    json=json.loads(json.dumps(body, default=str)),
                    headers=BILLING_AUTH,
                    timeout=10,
                ),
                bodies,
            )
        )
    assert [answer.status_code for answer in answers] == [200] * len(bodies)
    assert _wait(lambda: _count_parts(accounts_table, 840000) >= 12)
    time.sleep(0.5)  # the poller's last batch
    live = _view_json(840000)
    for item in accounts_table.items():
        if item["account_key"] == "billing#840000":
            accounts_table.dynamodb.delete_item(
                TableName="AccountsTable", Key={"account_key": {"S": item["account_key"]}, "part": {"S": item["part"]}}
            )
    first = rebuild_accounts({})
    assert first["records"] >= len(bodies) and _view_json(840000) == live
    again = rebuild_accounts({})  # idempotent
    assert again["records"] == first["records"] and _view_json(840000) == live


def _route(kind: str) -> str:
    return next(route.path for route in template.routes() if route.function == f"{kind}Function").rsplit("/", 1)[1]


def _count_parts(accounts_table: Table, account_id: int) -> int:
    return sum(1 for item in accounts_table.items() if item["account_key"] == f"billing#{account_id}")


def _wait(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_a_posted_notification_shows_in_the_account_within_two_seconds(api, table, projector):
    event = load_event("unpaid_invoice")
    body = json.loads(event["body"])
    body.update({"id": "fresh-unpaid-1", "account_id": 850000})
    posted = time.monotonic()
    assert (
        requests.post(f"{api.url}/billing/unpaid-invoice", json=body, headers=BILLING_AUTH, timeout=10).status_code
        == 200
    )

    def shown():
        answer = requests.get(f"{api.url}/accounts/850000", timeout=5)
        return answer.status_code == 200 and answer.json()["invoices"]

    assert _wait(shown, timeout=2.0), "not in the view within 2 s"
    waited = time.monotonic() - posted
    view = requests.get(f"{api.url}/accounts/850000", timeout=5).json()
    assert (
        view["invoices"][0]["status"] == "unpaid" and view["invoices"][0]["invoice_id"] == body["details"]["invoice_id"]
    )
    assert waited < 2.0


def test_the_read_api_answers_problems_for_unknown_accounts_bad_cursors_and_limits(api, table):
    unknown = requests.get(f"{api.url}/accounts/999999999", timeout=5)
    assert unknown.status_code == 404 and unknown.headers["Content-Type"] == "application/problem+json"
    assert requests.get(f"{api.url}/accounts/not-a-number", timeout=5).status_code == 404
    hostile_limits = ("limit=0", "limit=1000", "limit=x", "limit=" + "9" * 4301, "limit=" + "0" * 5000 + "5")
    for query in ("cursor=garbage", "cursor=eyJ4IjoxfQ", *hostile_limits):
        answer = requests.get(f"{api.url}/accounts/504/notifications?{query}", timeout=5)
        assert answer.status_code == 400 and answer.json()["status"] == 400, query[:40]
    for path in ("invoices", "products", "balances"):  # every paged read
        answer = requests.get(f"{api.url}/accounts/504/{path}?limit={'9' * 4301}", timeout=5)
        assert answer.status_code == 400, path
    assert requests.get(f"{api.url}/portals/{'m' * 300}", timeout=5).status_code == 404


def test_the_history_pages_newest_first_with_an_opaque_cursor_and_filters_by_type(api, table):
    bodies = history(860000)
    for body in bodies:
        assert (
            requests.post(
                f"{api.url}/billing/{_route(body['type'])}",
                json=json.loads(json.dumps(body, default=str)),
                headers=BILLING_AUTH,
                timeout=10,
            ).status_code
            == 200
        )
    seen, cursor = [], None
    while True:
        query = "limit=7" + (f"&cursor={cursor}" if cursor else "")
        page = requests.get(f"{api.url}/accounts/860000/notifications?{query}", timeout=5).json()
        seen += page["notifications"]
        cursor = page["cursor"]
        if cursor is None:
            break
    assert len(seen) == len(bodies) == len({item["notification_id"] for item in seen})
    times = [item["event_time"] for item in seen]
    assert times == sorted(times, reverse=True)
    unpaid = requests.get(f"{api.url}/accounts/860000/notifications?type=UnPaidInvoice&limit=100", timeout=5).json()
    assert {item["notification_type"] for item in unpaid["notifications"]} == {"UnPaidInvoice"}
    assert len(unpaid["notifications"]) == 6
    other = requests.get(f"{api.url}/accounts/504/notifications?cursor={page_cursor(api)}", timeout=5)
    assert other.status_code == 400  # a cursor of another account


def page_cursor(api) -> str:
    return requests.get(f"{api.url}/accounts/860000/notifications?limit=1", timeout=5).json()["cursor"]


def test_a_portal_shows_its_licence_and_where_it_came_from_never_a_token(api, table, installations):
    from local import samples

    answer = requests.get(f"{api.url}/portals/{samples.PORTAL_MEMBER_ID}", timeout=5)
    assert answer.status_code == 200
    portal = answer.json()
    assert portal["status"] == "installed" and portal["licence"]["source"] == "app.info"
    assert "token" not in answer.text and samples.PORTAL_APPLICATION_TOKEN not in answer.text
    payment = load_event("app_payment")
    from tests.conftest import invoke

    functions_payment = _payment_function()
    assert invoke(functions_payment, payment)[0] == 200
    portal = requests.get(f"{api.url}/portals/{samples.PORTAL_MEMBER_ID}", timeout=5).json()
    assert portal["licence"]["source"] == "ONAPPPAYMENT" and portal["licence"]["status"] == "S"
    assert portal["licence"]["as_of"]


def _payment_function():
    from local.server import LocalFunction

    return LocalFunction(next(route for route in template.routes() if route.function == "AppPaymentFunction"))


def test_an_account_with_5000_invoices_is_stored_one_item_per_part_and_read_a_page_at_a_time(
    api, table, accounts_table
):
    bodies = [
        _notification(
            "InvoiceForNewPeriod", number, START + timedelta(minutes=number), 870000, invoice_id=100000 + number
        )
        for number in range(5000)
    ]
    _project_all(_records(bodies))
    answer = requests.get(f"{api.url}/accounts/870000", timeout=30)
    assert answer.status_code == 200
    view = answer.json()
    assert view["counts"]["invoices"] == 5000 and len(view["invoices"]) == 20 and view["cursors"]["invoices"]
    assert view["account_code"] == bodies[0]["account_code"]
    seen = _all_pages(api, "/accounts/870000/invoices", "invoices", limit=100)
    assert [invoice["invoice_id"] for invoice in seen] == list(range(100000, 105000))


def _all_pages(api, path: str, name: str, limit: int, query: str = "") -> list[dict]:
    seen, cursor = [], None
    while True:
        answer = requests.get(
            f"{api.url}{path}?limit={limit}{query}" + (f"&cursor={cursor}" if cursor else ""), timeout=30
        )
        assert answer.status_code == 200, answer.text[:300]
        page = json.loads(answer.text, parse_float=Decimal)  # money exactly as answered
        seen += page[name]
        if (cursor := page["cursor"]) is None:
            return seen


def test_the_cli_prints_exactly_what_the_api_answers_and_a_readable_table(api, table, stack, projector):
    body = json.loads(load_event("trial_reminder")["body"])
    body.update({"id": "cli-trial-1", "account_id": 880000})
    assert (
        requests.post(f"{api.url}/billing/trial-reminder", json=body, headers=BILLING_AUTH, timeout=10).status_code
        == 200
    )
    assert _wait(lambda: requests.get(f"{api.url}/accounts/880000", timeout=5).status_code == 200, 5)
    environment = {**os.environ, "DYNAMODB_LOCAL_PORT": str(stack.dynamodb.port), "MOTO_PORT": str(stack.moto.port)}
    cli = [os.path.join(os.path.dirname(sys.executable), "billing-webhooks"), "--local"]
    printed = subprocess.run(
        [*cli, "--json", "accounts", "show", "880000"], capture_output=True, text=True, env=environment, timeout=60
    )
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.strip() == requests.get(f"{api.url}/accounts/880000", timeout=5).text
    readable = subprocess.run(
        [*cli, "accounts", "show", "880000"], capture_output=True, text=True, env=environment, timeout=60
    )
    assert "Trial: " in readable.stdout and "days left" in readable.stdout
    missing = subprocess.run(
        [*cli, "accounts", "show", "999999998"], capture_output=True, text=True, env=environment, timeout=60
    )
    assert missing.returncode == 1 and "Not found" in missing.stderr


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/%00",
        "/accounts/1e99",
        "/accounts/--5",
        "/accounts/5-",
        "/accounts/" + "9" * 60,
        "/accounts/504%2F..%2Fx",
        "/accounts/504/notifications?limit=%F0%9F%92%A5",
        "/accounts/504/notifications?cursor=%FF%FE",
        "/accounts/504/notifications?type=" + "x" * 500,
        "/accounts/504/notifications?cursor=" + "A" * 5000,
        "/portals/%00",
        "/portals/" + "%E2%82%AC" * 200,
        "/portals/..%2F..%2Fetc",
    ],
)
def test_hostile_reads_are_4xx_problems_never_5xx(api, path):
    answer = requests.get(f"{api.url}{path}", timeout=10)
    assert 400 <= answer.status_code < 500, (path, answer.status_code, answer.text[:200])
    # Ours, or (a path no route matches) API Gateway's own {"message": "Not Found"}, as the local API answers it.
    assert answer.headers["Content-Type"] == "application/problem+json" or answer.json() == {"message": "Not Found"}


def test_a_forged_cursor_of_the_right_shape_is_an_empty_page_or_a_400_never_a_5xx(api):
    forged = base64.urlsafe_b64encode(
        json.dumps(
            {"account_key": "billing#504", "event_time": "x" * 3000, "notification_id": "y", "notification_type": "z"}
        ).encode()
    ).decode()
    answer = requests.get(f"{api.url}/accounts/504/notifications?cursor={forged}", timeout=10)
    assert answer.status_code in (200, 400), answer.text[:200]  # DynamoDB Local reads on; DynamoDB refuses the key
    assert answer.status_code == 400 or answer.json()["notifications"] == []


def test_the_webhook_functions_load_nothing_of_the_account_view():
    script = (
        "import sys, runpy; runpy.run_path(sys.argv[1]);"
        "print(sorted(name for name in sys.modules if name.startswith('billing_webhooks')))"
    )
    for name in ("new_payment", "unpaid_invoice", "app_payment"):
        loaded = subprocess.run(
            [sys.executable, "-c", script, str(template.ROOT / "functions" / name / "app.py")],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(template.LAYER)},
            timeout=60,
        )
        assert loaded.returncode == 0, loaded.stderr[-2000:]
        modules = json.loads(loaded.stdout.strip().splitlines()[-1].replace("'", '"'))
        assert not [module for module in modules if "accounts" in module or "reads" in module or "rebuild" in module], (
            name
        )


def test_a_cursor_of_another_account_is_refused_before_any_read(monkeypatch):
    from billing_webhooks.data import notifications
    from billing_webhooks.errors import BadRequest
    from billing_webhooks.http import reads

    def must_not_query(*args, **kwargs):
        raise AssertionError("queried with another account's cursor")

    monkeypatch.setattr(notifications, "history", must_not_query)
    foreign = base64.urlsafe_b64encode(
        json.dumps(
            {
                "account_key": "billing#860000",
                "event_time": "2026-01-01",
                "notification_id": "n",
                "notification_type": "t",
            }
        ).encode()
    ).decode()
    with pytest.raises(BadRequest):
        reads.history("504", cursor=foreign)


def test_ids_past_a_dynamodb_key_are_unknown_never_unstorable(api):
    for path in ("/accounts/" + "9" * 3000, "/portals/" + "m" * 3000):
        answer = requests.get(f"{api.url}{path}", timeout=10)
        assert answer.status_code == 404 and answer.json()["title"] == "Not found", path


def test_a_bitrix24_record_moves_no_account_part(stack, accounts_table):
    from billing_webhooks.domain import accounts

    record = {
        **_records([_notification("NewPayment", 1, START, 890000)])[0],
        "source": "bitrix24",
        "account_key": "bitrix24#member-890000",
    }
    assert accounts.project(record) == 0
    assert accounts.show(890000) is None


def test_a_rebuild_rewrites_what_an_older_rule_left_but_never_moves_a_part_back(stack, accounts_table, dynamodb):
    from billing_webhooks.domain import accounts

    first, second = _records(
        [
            _notification("TrialReminder", number, START + timedelta(days=number), 891000, days_left=9 - number)
            for number in (1, 2)
        ]
    )
    accounts.project(second)
    # What an older rule wrote for the same notification: same stamp, another value.
    dynamodb.update_item(
        TableName="AccountsTable",
        Key={"account_key": {"S": "billing#891000"}, "part": {"S": "trial"}},
        UpdateExpression="SET #current.ends_on = :old",
        ExpressionAttributeNames={"#current": "current"},
        ExpressionAttributeValues={":old": {"S": "old-rule"}},
    )
    accounts.project(second)  # a redelivery changes nothing
    assert _view(891000)["trial"]["ends_on"] == "old-rule"
    accounts.project(second, rewrite=True)  # as the rebuild projects each stored record
    trial = _view(891000)["trial"]
    assert trial["ends_on"] != "old-rule" and trial["days_left"] == 7
    accounts.project(first, rewrite=True)  # older: never moves it back
    assert _view(891000)["trial"]["days_left"] == 7


def test_an_account_id_past_38_digits_is_unknown_without_a_read(monkeypatch):
    from billing_webhooks.domain import accounts
    from billing_webhooks.errors import NotFound
    from billing_webhooks.http import reads

    def must_not_read(*args, **kwargs):
        raise AssertionError("read an account no billing account_id can be")

    monkeypatch.setattr(accounts, "show", must_not_read)
    with pytest.raises(NotFound):
        reads.account("9" * 39)


def test_a_page_request_dynamodb_refuses_is_a_bad_request_not_a_storage_problem(monkeypatch):
    from billing_webhooks.data import notifications
    from billing_webhooks.errors import BadRequest, Unstorable
    from billing_webhooks.http import reads

    def refused(*args, **kwargs):  # as DynamoDB answers a start key over its limits (ValidationException)
        raise Unstorable("DynamoDB cannot store this delivery as sent (a value over its limits).")

    monkeypatch.setattr(notifications, "history", refused)
    with pytest.raises(BadRequest):
        reads.history("504")
