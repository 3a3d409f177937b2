"""The stack's test clock (local/clock.py): moved on the fake's `/_clock`, it runs every scheduled
function whose time came at its own instant, and a licence's end plays out as it would over days
in AWS: entitled in its grace, counted from the instant it ended, then not."""

import json
from datetime import UTC, datetime

import boto3
import pytest
import requests

from local import play

DAY = 86400


@pytest.fixture(scope="module")
def clocked(stack, api, dynamodb):
    """The stack's clock with its runner, its three streams polled, the fake delivering to `api`,
    on tables holding only the sample portal (what earlier modules left would be checked and
    decided at every move); rewound afterwards (a test-only move: the API never goes back) so
    later modules read real time."""
    from local import provision
    from local.schedules import clock_runner
    from local.streams import StreamPoller
    from tests.conftest import Table

    for name in ("InstallationsTable", "EntitlementsTable"):
        Table(dynamodb, name, ("member_id",)).clear()
    Table(dynamodb, "NotificationsTable", ("notification_id", "notification_type")).clear()  # no alert pending
    provision.install_sample_portal(dynamodb)
    # Nothing parked either: a parcel an earlier module left failing would be replayed every 5 minutes.
    sqs = boto3.client("sqs", endpoint_url=stack.endpoints["AWS_ENDPOINT_URL_SQS"])
    sqs.purge_queue(QueueUrl=stack.resources["queues"]["RescueQueue"])

    names = ("AccountProjectorFunction", "InstallationChangesFunction", "EntitlementEventsFunction")
    pollers = [StreamPoller(name, stack.endpoints, starting_position="LATEST").start() for name in names]
    assert all(poller.ready.wait(20) for poller in pollers)
    stack.bitrix24.deliver_to = api.url
    runner = clock_runner(stack.clock, stack.bitrix24, pollers)
    stack.bitrix24.clock_answer = runner.answer
    yield f"http://127.0.0.1:{stack.bitrix24.port}"
    stack.bitrix24.clock_answer = None
    # A move still running (its test timed out) would move the clock on after the rewind.
    runner.lock.acquire(timeout=120)
    for poller in pollers:
        poller.stop()
    stack.clock.offset = 0.0


def now_on(clock_url: str) -> float:
    answer = requests.get(f"{clock_url}/_clock", timeout=10)
    assert answer.status_code == 200
    return datetime.fromisoformat(answer.json()["now"].replace("Z", "+00:00")).timestamp()


def advance(clock_url: str, seconds: float) -> dict:
    answer = requests.post(f"{clock_url}/_clock", json={"advance_seconds": seconds}, timeout=600)
    assert answer.status_code == 200, answer.text
    return answer.json()


def entitlement(api, member_id: str) -> dict:
    answer = requests.get(f"{api.url}/entitlements/{member_id}", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


_READ: dict[str, list[dict]] = {}  # what events_of read off the queue, by portal


def events_of(stack, member_id: str) -> list[dict]:
    """What reached the local-events queue for this portal, read once (the queue drained: each
    event read is kept here by portal, for the test that asks for it)."""
    sqs = boto3.client("sqs", endpoint_url=stack.endpoints["AWS_ENDPOINT_URL_SQS"])
    url = sqs.get_queue_url(QueueName="local-events")["QueueUrl"]
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", []):
        for message in batch:
            event = json.loads(message["Body"])
            _READ.setdefault(event["detail"].get("member_id"), []).append(event)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return _READ.pop(member_id, [])


def test_the_clock_sees_the_writes_of_a_client_made_before_it(stack):
    """A job's peek is read again only after a write: one the clock missed (a client copies its
    session's hooks when it is made) left a peek stale, and its job ran at every one of its
    instants (72 licence sync runs a simulated 6 hours)."""
    from billing_webhooks.data import aws
    from local.schedules import WriteCounter

    aws.client("dynamodb")  # as an earlier test left it: made before the clock's counter
    counted = WriteCounter()
    aws.client("dynamodb").put_item(TableName="EntitlementsTable", Item={"member_id": {"S": "a-write-counted"}})
    aws.client("dynamodb").delete_item(TableName="EntitlementsTable", Key={"member_id": {"S": "a-write-counted"}})
    assert counted() == 2


def test_the_clock_answers_now_and_refuses_a_move_backwards_or_malformed(clocked):
    before = now_on(clocked)
    assert abs(before - datetime.now(UTC).timestamp()) < 5 * DAY * 400  # a time, in ISO 8601
    for wrong in ({"advance_seconds": -1}, {"to": "2001-01-01T00:00:00Z"}, {"advance_seconds": "1"}, {}, []):
        answer = requests.post(f"{clocked}/_clock", json=wrong, timeout=10)
        assert answer.status_code == 400 and "advance_seconds" in answer.json()["error"]
    assert now_on(clocked) >= before


def test_a_licence_that_runs_out_unpaid_is_in_grace_from_its_end_then_expired_with_two_events(clocked, api, stack):
    fake = stack.bitrix24
    domain = "clocked-unpaid.bitrix24.com"
    start = now_on(clocked)
    portal = play.new_portal(fake, domain, paid_until=start + 2 * DAY)
    assert play.post_lifecycle(api.url, fake, domain) == 200
    advance(clocked, 60)  # its install's entitlement decided and told
    assert entitlement(api, portal.member_id)["entitled"] is True
    events_of(stack, portal.member_id)  # the install's own, read and set aside

    answers, refreshes = [], []
    for _ in range(10 * 4):  # ten days, a quarter day at a time
        advance(clocked, DAY / 4)
        answers.append(entitlement(api, portal.member_id))
    refreshes = portal.refreshes_by_day
    told = [event for event in events_of(stack, portal.member_id) if event["detail-type"] == "EntitlementChanged"]

    reasons = [(answer["entitled"], answer["reason"]) for answer in answers]
    assert (True, "licence_expired_in_grace") in reasons and reasons[-1] == (False, "licence_expired")
    # In grace from the instant it ended (within DAYS' whole day), for the grace's 3 days, then not.
    first_grace = reasons.index((True, "licence_expired_in_grace"))
    first_out = reasons.index((False, "licence_expired"))
    assert 2 * 4 <= first_grace + 1 <= 3 * 4 + 1 and 3 * 4 - 1 <= first_out - first_grace <= 4 * 4 + 1
    assert [(event["detail"]["entitled"], event["detail"]["reason"]) for event in told] == [
        (True, "licence_expired_in_grace"),
        (False, "licence_expired"),
    ]
    assert max(refreshes.values(), default=0) <= 1, refreshes


def test_ninety_days_of_a_monthly_subscriber_paying_on_time_cost_at_most_four_refreshes(clocked, api, stack):
    fake = stack.bitrix24
    domain = "clocked-monthly.bitrix24.de"
    portal = play.new_portal(fake, domain, paid_until=now_on(clocked) + 30 * DAY)
    assert play.post_lifecycle(api.url, fake, domain) == 200
    answers = []
    for day in range(1, 91):
        advance(clocked, DAY)
        if day % 30 == 29:  # a day before the paid month runs out, the next is paid; its event at once
            paid = requests.post(f"{clocked}/_portals/{domain}/payments", json={"days": 30, "event": "now"}, timeout=60)
            assert paid.status_code == 200, paid.text
        answers.append(entitlement(api, portal.member_id))
    assert {(answer["entitled"], answer["reason"]) for answer in answers} == {(True, "paid")}
    # The install's vouching, then a keep-alive a month: never two a day, at most 4 in the 90 days.
    assert sum(portal.refreshes_by_day.values()) <= 4 and max(portal.refreshes_by_day.values()) <= 1, (
        portal.refreshes_by_day
    )
    # The fake tells the install's vouching (the first refresh of the pair the event brought) apart.
    assert list(portal.vouchings_by_day.values()) == [1] and min(portal.refreshes_by_day) in portal.vouchings_by_day
