"""No delivery can bend, hide or break the account view: names of any shape, ids the API can
name, a total order, bounded answers, and a projector and rebuild that never stop on one record."""

import copy
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from local import seeds, template
from local.server import LambdaContext, LocalFunction
from tests.conftest import Table
from tests.integration.test_accounts import BILLING_AUTH, _all_pages, _route

START = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def accounts_table(stack, dynamodb) -> Table:
    return Table(dynamodb, "AccountsTable", ("account_key", "part"))


def _body(kind: str, number: int, account_id, when: datetime = START, **details) -> dict:
    body = copy.deepcopy(seeds.billing_seeds()[kind])
    stamp = when.strftime("%Y-%m-%d %H:%M:%S")
    body.update(
        {"id": f"{kind}-{number}", "account_id": account_id, "original_event_date": stamp, "transfer_date": stamp}
    )
    body["details"].update(details)
    return json.loads(json.dumps(body, default=str))


def _record(body: dict) -> dict:
    from billing_webhooks.data.notifications import build_record
    from billing_webhooks.models import billing

    return build_record(getattr(billing, body["type"]).model_validate(body), START)


def _post(api, body: dict) -> requests.Response:
    return requests.post(f"{api.url}/billing/{_route(body['type'])}", json=body, headers=BILLING_AUTH, timeout=10)


def _project(bodies: list[dict]) -> None:
    from billing_webhooks.domain import accounts

    for body in bodies:
        accounts.project(_record(body))


@pytest.mark.parametrize(("account_id", "name"), [(920001, "²"), (920002, "--1"), (920003, "٣"), (920004, "-")])
def test_a_balance_named_like_a_number_reads_200_with_its_name_as_sent(api, table, accounts_table, account_id, name):
    _project(
        [
            _body("PercentOfBalanceUsed", 1, account_id, balance=name),
            _body("NewPayment", 2, account_id, balance_name=name, invoice_id=[]),
        ]
    )
    answer = requests.get(f"{api.url}/accounts/{account_id}", timeout=10)
    assert answer.status_code == 200, answer.text[:300]
    (balance,) = answer.json()["balances"]
    assert balance["name"] == name and balance["payment"]["notification_id"] == "NewPayment-2" and balance["usage"]


def test_a_1100_character_balance_name_is_projected_read_and_rebuilt(api, table, accounts_table):
    from billing_webhooks.jobs.account_rebuild import rebuild_accounts

    name = "Б" * 1100
    body = _body("PercentOfBalanceUsed", 1, 921000, balance=name)
    assert _post(api, body).status_code == 200
    _project([body])  # as the stream does (no poller in this module)
    (balance,) = requests.get(f"{api.url}/accounts/921000", timeout=10).json()["balances"]
    assert balance["name"] == name and balance["usage"]["notification_id"] == body["id"]
    accounts_table.dynamodb.delete_item(
        TableName="AccountsTable",
        Key={
            "account_key": {"S": "billing#921000"},
            "part": {
                "S": next(
                    item["part"]
                    for item in accounts_table.items()
                    if item["account_key"] == "billing#921000" and item["part"].startswith("balance#")
                )
            },
        },
    )
    answer = rebuild_accounts({})
    assert answer["resume"] is None and answer["skipped"] == 0
    assert requests.get(f"{api.url}/accounts/921000", timeout=10).json()["balances"] == [balance]


def test_the_seeds_shared_id_pair_gives_one_view_in_either_order_and_after_a_rebuild(api, table, accounts_table):
    from billing_webhooks.http import reads
    from billing_webhooks.jobs.account_rebuild import rebuild_accounts

    pair = [seeds.billing_seeds()["InvoiceForNewPeriod"], seeds.billing_seeds()["ProductStateChange"]]
    assert pair[0]["id"] == pair[1]["id"] and pair[0]["original_event_date"] == pair[1]["original_event_date"]
    assert pair[0]["curr_code"] != pair[1]["curr_code"]
    views = []
    for account_id, order in ((922001, pair), (922002, pair[::-1])):
        _project([{**body, "account_id": account_id} for body in order])
        view = reads.account(str(account_id))
        views.append({name: value for name, value in view.items() if name != "account_id"})
    assert views[0] == views[1]
    for body in pair[::-1]:  # stored in NotificationsTable, then rebuilt from it
        assert _post(api, {**body, "account_id": 922003}).status_code == 200
    rebuild_accounts({})
    rebuilt = {name: value for name, value in reads.account("922003").items() if name != "account_id"}
    assert rebuilt == views[0]


def test_account_minus_5_is_stored_and_readable_and_true_is_no_account_id(api, table, accounts_table):
    body = _body("UnPaidInvoice", 1, -5)
    assert _post(api, body).status_code == 200
    _project([body])
    answer = requests.get(f"{api.url}/accounts/-5", timeout=10)
    assert answer.status_code == 200 and answer.json()["account_id"] == -5
    refused = _post(api, _body("UnPaidInvoice", 2, True))
    assert refused.status_code == 422 and "account_id" in refused.text
    assert _post(api, _body("UnPaidInvoice", 3, 10**38)).status_code == 422  # more digits than a path may name


def test_an_8000_invoice_payment_leaves_the_view_small_and_every_invoice_reachable(api, table, accounts_table):
    from billing_webhooks.domain import accounts

    body = _body("NewPayment", 1, 923000, invoice_id=list(range(1, 8001)), balance_name="Money_BYN")
    assert len(json.dumps(body)) < 64 * 1024  # a body the webhook takes (_record validates it as the pipeline does)
    started = time.perf_counter()
    moved = accounts.project(_record(body))  # not posted: a stream poller of a later test would project it again
    seconds = time.perf_counter() - started
    assert moved == 8002  # the profile, 8000 invoices, the balance
    answer = requests.get(f"{api.url}/accounts/923000", timeout=30)
    assert answer.status_code == 200 and len(answer.content) < 256 * 1024
    view = answer.json()
    assert view["counts"] == {"invoices": 8000, "products": 0, "balances": 1, "open_invoices": 0}
    paid = _all_pages(api, "/accounts/923000/invoices", "invoices", limit=100, query="&status=paid")
    assert [invoice["invoice_id"] for invoice in paid] == list(range(1, 8001))
    assert {invoice["status"] for invoice in paid} == {"paid"}
    print(f"an 8000-invoice payment: {moved} writes in {seconds:.1f} s on DynamoDB Local")


def test_open_invoices_are_listed_apart_and_leave_the_list_when_paid_in_any_order(api, table, accounts_table):
    notices = [
        _body("UnPaidInvoice", number, 924000, START + timedelta(hours=number), invoice_id=number)
        for number in range(1, 4)
    ]
    payment = _body("NewPayment", 9, 924000, START - timedelta(days=1), invoice_id=[2])  # older than its notice
    _project([notices[0], payment, notices[1], notices[2]])
    view = requests.get(f"{api.url}/accounts/924000", timeout=10).json()
    assert [invoice["invoice_id"] for invoice in view["open_invoices"]] == [1, 3]
    assert view["counts"]["open_invoices"] == 2
    unpaid = requests.get(f"{api.url}/accounts/924000/invoices?status=unpaid", timeout=10).json()
    assert [invoice["invoice_id"] for invoice in unpaid["invoices"]] == [1, 3]
    issued = requests.get(f"{api.url}/accounts/924000/invoices?status=issued", timeout=10).json()
    assert issued["invoices"] == []
    for query in ("status=open", "status=paid&cursor=" + unpaid["cursor"] if unpaid["cursor"] else "status=x"):
        assert requests.get(f"{api.url}/accounts/924000/invoices?{query}", timeout=10).status_code == 400


def test_a_rebuild_over_a_record_it_cannot_project_finishes_and_names_it(stack, table, accounts_table, dynamodb):
    from billing_webhooks.data.toolkit import to_item
    from billing_webhooks.jobs.account_rebuild import rebuild_accounts

    good = _record(_body("TrialReminder", 1, 925000))
    broken = {**_record(_body("TrialReminder", 2, 925001)), "payload": "not an object"}  # no rule reads it
    for record in (broken, good):
        dynamodb.put_item(TableName="NotificationsTable", Item=to_item(record))
    answer = rebuild_accounts({"page_size": 1})
    assert answer["resume"] is None and answer["records"] == 2 and answer["skipped"] == 1
    assert answer["unprojectable"] == ["TrialReminder TrialReminder-2: AttributeError"]
    from billing_webhooks.http import reads

    assert reads.account("925000")["trial"]["notification_id"] == "TrialReminder-1"


def test_the_projector_names_exactly_the_record_it_cannot_take_on_the_failure_queue(stack, table, accounts_table):
    import boto3

    from billing_webhooks.data.toolkit import to_item
    from billing_webhooks.settings import settings

    sqs = boto3.client("sqs", endpoint_url=stack.endpoints["AWS_ENDPOINT_URL_SQS"])
    queue = settings().projection_failures_queue_url
    sqs.purge_queue(QueueUrl=queue)
    records = [_record(_body("TrialReminder", number, 926000 + number)) for number in range(5)]
    records[2] = {**records[2], "payload": "not an object"}
    event = {
        "Records": [
            {
                "eventID": str(number),
                "eventName": "INSERT",
                "eventSource": "aws:dynamodb",
                "dynamodb": {
                    "NewImage": to_item(record),
                    "SequenceNumber": str(number),
                    "SizeBytes": 1,
                    "StreamViewType": "NEW_IMAGE",
                },
            }
            for number, record in enumerate(records)
        ]
    }
    projector = LocalFunction(template.function("AccountProjectorFunction"))
    assert projector.handler(event, LambdaContext("AccountProjectorFunction"))["batchItemFailures"] == []
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    assert [json.loads(message["Body"])["unprojectable"] for message in messages] == [
        "TrialReminder TrialReminder-2: AttributeError"
    ]


def test_a_segmented_paged_and_resumed_rebuild_projects_every_record(stack, table, accounts_table, dynamodb):
    from billing_webhooks.data.toolkit import to_item
    from billing_webhooks.http import reads
    from billing_webhooks.jobs.account_rebuild import rebuild_accounts

    records = [_record(_body("TrialReminder", number, 927000 + number, days_left=number)) for number in range(30)]
    for record in records:
        dynamodb.put_item(TableName="NotificationsTable", Item=to_item(record))

    class RunningOut:
        def get_remaining_time_in_millis(self) -> int:
            return 1_000  # under the spare minute: stop after each page

    seen = 0
    for segment in range(3):
        answer = rebuild_accounts({"segment": segment, "total_segments": 3, "page_size": 4}, RunningOut())
        runs = 1
        while answer["resume"] is not None:
            answer_records = answer["records"]
            seen += answer_records
            answer = rebuild_accounts(
                {"segment": segment, "total_segments": 3, "page_size": 4, "start": answer["resume"]}, RunningOut()
            )
            runs += 1
        seen += answer["records"]
        assert runs > 1  # more than one page per segment: resumed
    assert seen == 30
    assert [reads.account(str(927000 + number))["trial"]["days_left"] for number in range(30)] == list(range(30))


def test_two_payments_of_one_ts_leave_the_same_licence_in_either_order(stack, installations):
    from billing_webhooks.domain import lifecycle
    from billing_webhooks.models.bitrix24 import AppPaymentEvent
    from billing_webhooks.wire.delivery import Delivery
    from local import samples

    seed = seeds.bitrix24_payment_seed()
    first = {**seed, "data": {**seed["data"], "STATUS": "P", "DAYS": "30"}}
    second = {**seed, "data": {**seed["data"], "STATUS": "T", "DAYS": "5"}}
    from billing_webhooks.data import installations as records
    from local import provision

    results = []
    for order in ((first, second), (second, first)):
        installations.clear()
        provision.install_sample_portal(installations.dynamodb)
        delivery = Delivery(
            event={}, replay=None, sender=records.get(samples.PORTAL_MEMBER_ID)
        )  # as PortalToken finds it
        for body in order:
            event = AppPaymentEvent.model_validate(
                {**body, "auth": {**body["auth"], "member_id": samples.PORTAL_MEMBER_ID}}
            )
            lifecycle.refresh_licence(event, delivery, START)
        installation = installations.get(member_id=samples.PORTAL_MEMBER_ID)
        results.append((installation["licence_status"], installation["days"]))
    assert results[0] == results[1]


def test_a_payment_after_its_notice_takes_the_invoice_off_the_open_list(api, table, accounts_table):
    notice = _body("UnPaidInvoice", 1, 928000, START, invoice_id=7)
    _project([notice])
    assert [
        invoice["invoice_id"]
        for invoice in requests.get(f"{api.url}/accounts/928000", timeout=10).json()["open_invoices"]
    ] == [7]
    _project([_body("NewPayment", 2, 928000, START + timedelta(days=1), invoice_id=[7])])
    view = requests.get(f"{api.url}/accounts/928000", timeout=10).json()
    assert view["open_invoices"] == [] and view["counts"]["open_invoices"] == 0
    assert view["invoices"][0]["status"] == "paid"


def test_a_cursor_reads_only_the_list_and_the_account_it_was_given_for(api, table, accounts_table, monkeypatch):
    invoices = [
        _body("UnPaidInvoice", number, 926000, START + timedelta(hours=number), invoice_id=number) for number in (1, 2)
    ]
    _project(
        [
            *invoices,
            _body("UnPaidInvoice", 3, 926001, START, invoice_id=3),
            _body("UnPaidInvoice", 4, 926001, START, invoice_id=4),
        ]
    )
    first = requests.get(f"{api.url}/accounts/926000/invoices?limit=1", timeout=10).json()
    cursor = first["cursor"]
    assert cursor and first["invoices"][0]["invoice_id"] == 1
    following = requests.get(f"{api.url}/accounts/926000/invoices?limit=1&cursor={cursor}", timeout=10)
    assert following.status_code == 200 and following.json()["invoices"][0]["invoice_id"] == 2
    for body in (
        _body("UnPaidInvoice", 5, 926001, START, invoice_id=5),
        _body("UnPaidInvoice", 6, 926001, START, invoice_id=6),
    ):
        assert _post(api, body).status_code == 200
    history = requests.get(f"{api.url}/accounts/926001/notifications?limit=1", timeout=10).json()["cursor"]
    assert history
    from billing_webhooks.http import reads

    def never(*args, **kwargs):  # a foreign cursor is refused by our check, before DynamoDB sees it
        raise AssertionError("queried with a cursor of another list or account")

    monkeypatch.setattr(reads.accounts, "listing", never)
    monkeypatch.setattr(reads.notifications, "history", never)
    for elsewhere in (
        "/accounts/926001/invoices",  # another account's list
        "/accounts/926000/products",  # another list of the same account
        "/accounts/926000/balances",
        "/accounts/926000/invoices?status=unpaid&x=1",  # the open invoices' index: another key
        "/accounts/926000/notifications",  # the history: another index
    ):
        joiner = "&" if "?" in elsewhere else "?"
        answer = requests.get(f"{api.url}{elsewhere}{joiner}limit=1&cursor={cursor}", timeout=10)
        assert answer.status_code == 400, (elsewhere, answer.text)
    answer = requests.get(f"{api.url}/accounts/926000/notifications?limit=1&cursor={history}", timeout=10)
    assert answer.status_code == 400, answer.text  # another account's history
