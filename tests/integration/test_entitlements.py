"""One entitlement per portal, kept current off the delivery path (docs/entitlements.md): linked
to its billing account by an operator or by account_code, moved by the account projector and
the licence sync, read with one GetItem."""

import copy
import json
import time
from datetime import datetime

import pytest
import requests

from local import samples, seeds, template
from tests.conftest import Table

MEMBER = samples.PORTAL_MEMBER_ID
# Accounts of this module's own: the projector replays the stream from its start, with other
# modules' notifications of the seeds' account 504 in it.
ACCOUNT, OTHER = 880504, 880777
BILLING_AUTH = {"Authorization": "Bearer local-billing-token", "Content-Type": "application/json"}


@pytest.fixture
def kept(stack, dynamodb, table, installations) -> Table:
    """EntitlementsTable and the account view emptied; the sample portal installed, unlinked."""
    for name, key in (("EntitlementsTable", ("member_id",)), ("AccountsTable", ("account_key", "part"))):
        Table(dynamodb, name, key).clear()
    return Table(dynamodb, "EntitlementsTable", ("member_id",))


@pytest.fixture
def synced(stack, dynamodb, kept, installation_stream) -> Table:
    """The sample portal's licence as its app.info says now (the fake: paid, 28 days), through the
    licence sync, and its entitlement decided from it (the installation's stream); the sample
    install's own event is from 2016, so its licence reads expired until then."""
    from billing_webhooks.jobs.portal_sync import sync_now

    Table(dynamodb, "PortalTokensTable", ("member_id",)).clear()
    stack.keep_sample_tokens()
    assert sync_now([MEMBER])[0]["outcome"] == "ok"
    deadline = time.monotonic() + 20
    while ((kept.get(member_id=MEMBER) or {}).get("entitlement") or {}).get("reason") != "paid":
        assert time.monotonic() < deadline, kept.get(member_id=MEMBER)
        time.sleep(0.1)
    return kept


SCHEMAS = {
    path.name.removesuffix(".schema.json"): json.loads(path.read_text())
    for path in (template.ROOT / "docs" / "events").glob("*.schema.json")
}


@pytest.fixture
def bus_events(stack, event_stream):
    """What reached the local-events queue (BillingEventsBus's rule): drained before the test,
    then read as it goes, each detail checked against its JSON Schema."""
    import boto3
    import jsonschema

    sqs = boto3.client("sqs", endpoint_url=stack.endpoints["AWS_ENDPOINT_URL_SQS"])
    url = sqs.get_queue_url(QueueName="local-events")["QueueUrl"]
    time.sleep(0.5)  # what an earlier test's changes told is on its way: drained with the rest
    while drained := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in drained:  # PurgeQueue is once a minute: drained by hand
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    seen: list[dict] = []

    def read(expected: int, seconds: float = 10) -> list[dict]:
        deadline = time.monotonic() + seconds
        while len(seen) < expected and time.monotonic() < deadline:
            for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                "Messages", []
            ):
                event = json.loads(message["Body"])
                jsonschema.validate(event["detail"], SCHEMAS[event["detail-type"]])
                seen.append(event)
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return [
            (
                event["detail-type"],
                event["detail"].get("entitled"),
                event["detail"].get("reason", event["detail"].get("invoice_id")),
            )
            for event in seen
        ]

    return read


def entitlement(api) -> dict:
    answer = requests.get(f"{api.url}/entitlements/{MEMBER}", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def eventually(api, check, seconds: float = 20) -> dict:
    deadline = time.monotonic() + seconds
    while not check(answer := entitlement(api)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert check(answer), answer
    return answer


def post(api, kind: str, path: str, **changes) -> None:
    body = copy.deepcopy(seeds.billing_seeds()[kind])
    body.update(changes)
    answer = requests.post(
        f"{api.url}/billing/{path}", data=json.dumps(body, default=str), headers=BILLING_AUTH, timeout=10
    )
    assert answer.status_code == 200, answer.text


def test_a_linked_portal_is_entitled_then_not_past_an_invoices_blocking_day_then_again_once_paid(
    api, synced, projector, bus_events
):
    kept = synced
    from billing_webhooks.domain import links

    linked = links.link(MEMBER, ACCOUNT)
    assert (linked["entitled"], linked["reason"], linked["account"]["account_id"]) == (True, "paid", ACCOUNT)
    answer = entitlement(api)
    assert answer["licence"]["source"] == "app.info" and answer["licence"]["as_of"] and "changes_at" not in answer
    # The seed's UnPaidInvoice: invoice 38, blocking 15 days after 2019-03-05, long past.
    post(api, "UnPaidInvoice", "unpaid-invoice", account_id=ACCOUNT)
    refused = eventually(api, lambda found: found["entitled"] is False)
    assert refused["reason"] == "invoice_overdue: 38" and refused["account"]["overdue_invoices"] == [38]
    version = kept.get(member_id=MEMBER)["entitlement_version"]
    post(api, "UnPaidInvoice", "unpaid-invoice", account_id=ACCOUNT)  # a redelivery moves nothing
    time.sleep(2)
    assert kept.get(member_id=MEMBER)["entitlement_version"] == version
    post(
        api,
        "NewPayment",
        "new-payment",
        account_id=ACCOUNT,
        account_code="<external-code>",
        details={**seeds.billing_seeds()["NewPayment"]["details"], "invoice_id": [38]},
    )
    again = eventually(api, lambda found: found["entitled"] is True)
    assert again["reason"] == "paid" and again["account"]["overdue_invoices"] == []
    assert kept.get(member_id=MEMBER)["entitlement_version"] == version + 1
    # Each change told once on BillingEventsBus: the overdue invoice (the entitlement, the invoice),
    # the payment. The link changed no verdict and the redelivery nothing: neither told anything.
    told = [
        ("EntitlementChanged", False, "invoice_overdue: 38"),
        ("InvoiceOverdue", None, 38),
        ("EntitlementChanged", True, "paid"),
    ]
    assert sorted(bus_events(3)) == sorted(told)
    assert len(bus_events(4, seconds=3)) == 3 and "pending_events" not in kept.get(member_id=MEMBER)


def test_an_account_whose_code_is_the_portals_member_id_is_linked_by_default_and_an_operator_link_wins(
    api, synced, projector
):
    kept = synced
    from billing_webhooks.domain import links

    post(
        api,
        "AccountStateChange",
        "account-state-change",
        account_id=OTHER,
        account_code=MEMBER,
        details={
            **seeds.billing_seeds()["AccountStateChange"]["details"],
            "new_state": {"state": "Blocked", "date_from": "2019-03-01 00:00:00 +02:00", "date_to": ""},
        },
    )
    blocked = eventually(api, lambda found: found["account"] is not None)
    assert (blocked["entitled"], blocked["reason"], blocked["account"]["account_id"]) == (
        False,
        "account_blocked",
        OTHER,
    )
    assert kept.get(member_id=MEMBER)["link_source"] == "account_code"
    operator = links.link(MEMBER, ACCOUNT)
    assert operator["entitled"] is True and operator["account"]["account_id"] == ACCOUNT
    post(api, "AccountStateChange", "account-state-change", id="another-state", account_id=OTHER, account_code=MEMBER)
    time.sleep(2)
    assert kept.get(member_id=MEMBER)["account_id"] == ACCOUNT  # the default never replaces an operator's link
    assert links.unlink(MEMBER)["account"] is None


def test_a_portal_not_decided_yet_is_answered_from_its_installation_and_an_unknown_one_is_404(
    api, kept, installation_stream
):
    installation_stream.settle()  # the sample install's own decision (the stream's), made and then cleared
    kept.clear()
    answer = entitlement(api)  # the sample install's licence, as of its 2016 event: long expired
    assert (answer["entitled"], answer["reason"], answer["account"]) == (False, "licence_expired", None)
    assert kept.get(member_id=MEMBER) is None  # a read writes nothing
    assert requests.get(f"{api.url}/entitlements/nobody", timeout=10).status_code == 404


def test_an_answer_is_never_older_than_the_deadline_it_named(api, synced, dynamodb):
    kept = synced
    from billing_webhooks.domain import links

    links.link(MEMBER, ACCOUNT)
    # As if decided long ago, with a deadline (a grace period, a blocking day) that has passed.
    stale = {**kept.get(member_id=MEMBER)["entitlement"], "entitled": False, "reason": "stale"}
    from billing_webhooks.data.toolkit import to_item

    dynamodb.update_item(
        TableName="EntitlementsTable",
        Key={"member_id": {"S": MEMBER}},
        UpdateExpression="SET entitlement = :e, deadline_at = :past",
        ExpressionAttributeValues={":e": to_item({"e": stale})["e"], ":past": {"N": "1"}},
    )
    assert entitlement(api)["reason"] == "paid"
    dynamodb.update_item(
        TableName="EntitlementsTable",
        Key={"member_id": {"S": MEMBER}},
        UpdateExpression="SET deadline_at = :later",
        ExpressionAttributeValues={":later": {"N": str(int(time.time()) + 3600)}},
    )
    assert entitlement(api)["reason"] == "stale"  # before its deadline, the kept answer: one GetItem


def test_a_licence_played_expired_flips_the_entitlement_when_its_grace_period_ends_with_one_event(
    api, synced, stack, bus_events
):
    from billing_webhooks.jobs.entitlement_deadlines import run_deadlines
    from billing_webhooks.jobs.portal_sync import sync_now

    answer = requests.put(
        f"http://127.0.0.1:{stack.bitrix24.port}/_portals/{samples.PORTAL_DOMAIN}",
        json={"STATUS": "P", "PAYMENT_EXPIRED": "Y", "DAYS": -1},
        timeout=10,
    )
    assert answer.status_code == 200
    assert sync_now([MEMBER])[0]["outcome"] == "ok"
    in_grace = eventually(api, lambda found: found["reason"] != "paid")
    assert (in_grace["entitled"], in_grace["reason"]) == (True, "licence_expired_in_grace")
    grace_ends = datetime.fromisoformat(in_grace["grace_until"].replace("Z", "+00:00"))
    # The grace counts from the instant the licence ended (a day before the answer), not from the answer.
    assert 1.9 * 86400 < grace_ends.timestamp() - time.time() < 2.1 * 86400
    version = synced.get(member_id=MEMBER)["entitlement_version"]
    time.sleep(1.1)  # a later second: an answer restamped would show
    assert sync_now([MEMBER])[0]["outcome"] == "ok"  # an answer that only confirms the end
    time.sleep(2)
    assert synced.get(member_id=MEMBER)["entitlement_version"] == version
    assert entitlement(api)["grace_until"] == in_grace["grace_until"]
    assert run_deadlines(int(grace_ends.timestamp()) - 60) == {}  # not yet
    assert run_deadlines(int(grace_ends.timestamp()) + 1) == {"changed": 1}
    assert run_deadlines(int(grace_ends.timestamp()) + 120) == {}  # no deadline left to wait for
    assert sorted(bus_events(3)) == sorted(
        [
            ("EntitlementChanged", True, "licence_expired_in_grace"),
            ("LicenceChanged", None, None),
            ("EntitlementChanged", False, "licence_expired"),
        ]
    )


def test_the_linked_accounts_state_changes_are_told_and_a_blocked_one_refuses(api, synced, projector, bus_events):
    from billing_webhooks.domain import links

    links.link(MEMBER, ACCOUNT)
    post(api, "AccountStateChange", "account-state-change", account_id=ACCOUNT)  # the seed's: Active (from Test)
    assert bus_events(1) == [("AccountStateChanged", None, None)]
    state = seeds.billing_seeds()["AccountStateChange"]
    post(
        api,
        "AccountStateChange",
        "account-state-change",
        id="blocked-1",
        account_id=ACCOUNT,
        original_event_date="2019-04-01 10:00:00 +02:00",
        details={
            **state["details"],
            "new_state": {"state": "Blocked", "date_from": "2019-04-01 10:00:00 +02:00", "date_to": ""},
        },
    )
    blocked = eventually(api, lambda found: found["entitled"] is False)
    assert blocked["reason"] == "account_blocked"
    assert sorted(bus_events(3)) == sorted(
        [
            ("AccountStateChanged", None, None),
            ("AccountStateChanged", None, None),
            ("EntitlementChanged", False, "account_blocked"),
        ]
    )


def test_a_licence_that_ended_longer_ago_than_the_grace_is_not_entitled_at_its_first_answer(
    api, synced, stack, bus_events
):
    from billing_webhooks.jobs.portal_sync import sync_now

    answer = requests.put(
        f"http://127.0.0.1:{stack.bitrix24.port}/_portals/{samples.PORTAL_DOMAIN}",
        json={"STATUS": "P", "PAYMENT_EXPIRED": "Y", "DAYS": -3},  # docs/development.md's example
        timeout=10,
    )
    assert answer.status_code == 200
    assert sync_now([MEMBER])[0]["outcome"] == "ok"
    ended = eventually(api, lambda found: found["reason"] != "paid")
    assert (ended["entitled"], ended["reason"]) == (False, "licence_expired")
    for _ in range(3):  # the daily checks that follow confirm it: no grace restarts, nothing told
        assert sync_now([MEMBER])[0]["outcome"] == "ok"
    time.sleep(2)
    assert entitlement(api)["reason"] == "licence_expired"
    assert sorted(bus_events(2)) == sorted(
        [("EntitlementChanged", False, "licence_expired"), ("LicenceChanged", None, None)]
    )
    assert len(bus_events(3, seconds=3)) == 2


def test_an_uninstall_flips_the_entitlement_off_the_delivery_path_with_one_event(
    api, synced, installation_stream, bus_events
):
    from local.wire import php_form_encode
    from tests.integration.test_deliveries import FORM
    from tests.integration.test_deliveries import post as deliver

    assert entitlement(api)["entitled"] is True
    status, _, answer = deliver(
        api, "/bitrix24/app-uninstall", php_form_encode(samples.BITRIX24_BODIES["app_uninstall"]()), FORM
    )
    assert status == 200, answer
    gone = eventually(api, lambda found: found["entitled"] is False)
    assert gone["reason"] == "not_installed"
    assert bus_events(1) == [("EntitlementChanged", False, "not_installed")]


def test_an_account_whose_code_is_the_portals_domain_is_linked_by_default(api, synced, projector):
    post(api, "AccountStateChange", "account-state-change", account_id=OTHER + 1, account_code=samples.PORTAL_DOMAIN)
    linked = eventually(api, lambda found: found["account"] is not None)
    assert (
        linked["account"]["account_id"] == OTHER + 1 and synced.get(member_id=MEMBER)["link_source"] == "account_code"
    )


BLOCKED = {"state": "Blocked", "date_from": "2019-03-01 00:00:00 +02:00", "date_to": ""}


def _account_state(api, account_id: int, code: str, notification: str, state: dict | None = None) -> None:
    details = {**seeds.billing_seeds()["AccountStateChange"]["details"], **({"new_state": state} if state else {})}
    post(
        api,
        "AccountStateChange",
        "account-state-change",
        id=notification,
        account_id=account_id,
        account_code=code,
        details=details,
    )


def _settled(projector, kept, check, seconds: float = 20) -> dict:
    deadline = time.monotonic() + seconds
    while not check(item := kept.get(member_id=MEMBER) or {}) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert check(item), item
    return item


def test_the_first_default_link_stands_and_another_account_naming_the_portal_is_a_conflict_never_applied(
    api, synced, projector, bus_events
):
    from billing_webhooks.http import reads

    _account_state(api, OTHER, MEMBER, "first-account")
    _settled(projector, synced, lambda item: item.get("account_id") == OTHER)
    # A second account coded with the portal's member_id (any case), blocked: it decides nothing.
    for number in range(3):
        _account_state(api, OTHER + 1, MEMBER.upper(), f"second-account-{number}", BLOCKED)
        _account_state(api, OTHER, MEMBER, f"first-account-again-{number}")
    item = _settled(projector, synced, lambda item: item.get("link_conflicts") == [f"billing#{OTHER + 1}"])
    assert item["account_id"] == OTHER and entitlement(api)["entitled"] is True
    assert [event for event in bus_events(2, seconds=3) if event[0] == "EntitlementChanged"] == []  # no flapping
    listed = reads.link_conflicts()
    assert listed["conflicts"] == [
        {"member_id": MEMBER, "linked_to": OTHER, "link_source": "account_code", "also_named_by": [OTHER + 1]}
    ]
    # An operator settles it: the conflict goes with the decision.
    from billing_webhooks.domain import links

    assert links.link(MEMBER, OTHER + 1)["reason"] == "account_blocked"
    assert reads.link_conflicts()["conflicts"] == []


def test_links_clear_pins_no_link_until_an_operator_sets_one(api, synced, projector):
    from billing_webhooks.domain import links

    _account_state(api, OTHER, MEMBER, "before-the-clear", BLOCKED)
    _settled(projector, synced, lambda item: item.get("account_id") == OTHER)
    assert links.unlink(MEMBER)["account"] is None
    _account_state(api, OTHER, MEMBER, "after-the-clear", BLOCKED)
    time.sleep(2)  # the projector has had its chance
    item = synced.get(member_id=MEMBER)
    assert "account_id" not in item and item["link_source"] == "operator" and entitlement(api)["entitled"] is True


def test_an_account_whose_code_changes_loses_the_link_its_old_code_made(api, synced, projector):
    _account_state(api, OTHER, MEMBER, "coded-with-the-portal", BLOCKED)
    _settled(projector, synced, lambda item: item.get("account_id") == OTHER)
    _account_state(api, OTHER, "someone-else-entirely", "coded-elsewhere", BLOCKED)
    _settled(projector, synced, lambda item: "account_id" not in item)
    eventually(api, lambda found: found["entitled"] is True and found["account"] is None)


def test_a_strangers_unvouched_install_whose_member_id_is_a_portals_domain_captures_no_link(
    api, synced, projector, stack
):
    from local.fake_bitrix24 import Portal
    from tests.integration.test_identity import EVIL, _claim  # noqa: PLC0415
    from tests.integration.test_installations import deliver

    stack.bitrix24.portals[EVIL] = Portal("evil-access-token", samples.APP_CODE, member_id="evil-member")
    claim = _claim(refresh_token=None, member_id=samples.PORTAL_DOMAIN)
    assert deliver(api, "app_install", claim)[0] == 200  # kept, unvouched
    _account_state(api, OTHER, samples.PORTAL_DOMAIN, "coded-with-the-domain", BLOCKED)
    item = _settled(projector, synced, lambda item: item.get("account_id") == OTHER)  # the real portal's
    assert item["link_source"] == "account_code"
    eventually(api, lambda found: found["reason"] == "account_blocked")  # decided once the link is written
