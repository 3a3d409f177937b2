"""An entitlement's changes reach BillingEventsBus from EntitlementsTable's stream
(jobs/entitlement_events.py): each told change once, in `sequence` order per portal, with no gap,
whatever fails between the write and the bus; and a recomputation refused because another wrote
first decides again from what it reads then (domain/entitlement_updates.py)."""

import json
import threading
import time
from typing import Any

import boto3
import pytest

from tests.conftest import Table

MEMBER = "events-portal-0001"


class StreamTap:
    """EntitlementsTable's stream from now on, read by hand in Lambda's record form."""

    def __init__(self, endpoints: dict[str, str]) -> None:
        url = endpoints["AWS_ENDPOINT_URL_DYNAMODB"]
        self.streams = boto3.client("dynamodbstreams", endpoint_url=url)
        self.arn = boto3.client("dynamodb", endpoint_url=url).describe_table(TableName="EntitlementsTable")["Table"][
            "LatestStreamArn"
        ]
        shards = self.streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]
        self.iterators = {
            shard["ShardId"]: self.streams.get_shard_iterator(
                StreamArn=self.arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
            )["ShardIterator"]
            for shard in shards
        }

    def records(self, expected: int, seconds: float = 10) -> list[dict[str, Any]]:
        from local.streams import _lambda_record

        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + seconds
        while len(found) < expected and time.monotonic() < deadline:
            for shard, iterator in list(self.iterators.items()):
                if iterator is None:
                    continue
                answer = self.streams.get_records(ShardIterator=iterator)
                self.iterators[shard] = answer.get("NextShardIterator")
                found += [_lambda_record(record, self.arn) for record in answer["Records"]]
            time.sleep(0.1)
        return [record for record in found if record["dynamodb"]["Keys"]["member_id"]["S"] == MEMBER]


class FakeBus:
    """PutEvents as the events job sees it: what was put, and calls that fail while `failing` says."""

    def __init__(self) -> None:
        self.put: list[dict[str, Any]] = []
        self.failing = lambda entries: False

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 (boto3's name)
        if self.failing(Entries):
            raise ConnectionError("the bus is not answering")
        self.put += [{"detail-type": entry["DetailType"], **json.loads(entry["Detail"])} for entry in Entries]
        return {"FailedEntryCount": 0, "Entries": [{"EventId": str(len(self.put))} for _ in Entries]}


@pytest.fixture
def portal(stack, dynamodb, monkeypatch) -> dict[str, Any]:
    """A vouched portal of this module's own, paid, decided once; its installation to move by hand."""
    from billing_webhooks.data import events
    from billing_webhooks.data.toolkit import to_item
    from billing_webhooks.domain import entitlement_updates

    Table(dynamodb, "EntitlementsTable", ("member_id",)).clear()

    class Installations:
        def put(self, item: dict[str, Any]) -> None:
            dynamodb.put_item(TableName="InstallationsTable", Item=to_item(item))

        def delete(self, member_id: str) -> None:
            dynamodb.delete_item(TableName="InstallationsTable", Key={"member_id": {"S": member_id}})

    installations = Installations()
    now = int(time.time())
    installed = {
        "member_id": MEMBER,
        "domain": "events.bitrix24.com",
        "status": "installed",
        "vouched": True,
        "licence_status": "P",
        "licence_source": "app.info",
        "licence_ts": now,
        "days": 30,
    }
    installations.put(installed)
    bus = FakeBus()
    real_client = events.aws.client
    monkeypatch.setattr(events.aws, "client", lambda name, **kw: bus if name == "events" else real_client(name, **kw))
    entitlement_updates.recompute(MEMBER)
    yield {"installed": installed, "installations": installations, "bus": bus, "now": now}
    installations.delete(member_id=MEMBER)


def _move(portal: dict[str, Any], **changes: Any) -> None:
    portal["installations"].put({**portal["installed"], **changes})


def _deliver_like_lambda(records: list[dict[str, Any]], attempts: int = 10) -> int:
    """The events job's handler over a batch, retried from the first failed record as Lambda does."""
    from billing_webhooks.jobs.entitlement_events import publish_in_order

    for attempt in range(attempts):
        failed = {item["itemIdentifier"] for item in publish_in_order({"Records": records})["batchItemFailures"]}
        if not failed:
            return attempt
        records = records[next(i for i, r in enumerate(records) if r["dynamodb"]["SequenceNumber"] in failed) :]
    raise AssertionError("never delivered")


def _told(bus: FakeBus) -> list[tuple[int, str, Any]]:
    return [(event["sequence"], event["detail-type"], event.get("reason")) for event in bus.put]


def test_changes_written_while_no_publisher_runs_are_each_told_once_in_sequence_order_when_it_does(stack, portal):
    """A writer that dies right after its write, and a second change before the first is told:
    the stream holds both, and the job tells both, in order."""
    from billing_webhooks.data import entitlements
    from billing_webhooks.domain import entitlement_updates

    tap = StreamTap(stack.endpoints)
    first = entitlements.get(MEMBER)["sequence"]
    _move(portal, status="uninstalled")
    assert entitlement_updates.recompute(MEMBER)[1]
    _move(portal, status="installed")
    assert entitlement_updates.recompute(MEMBER)[1]
    records = tap.records(expected=2)
    assert len(records) == 2
    assert _deliver_like_lambda(records) == 0
    assert _told(portal["bus"]) == [
        (first + 1, "EntitlementChanged", "not_installed"),
        (first + 2, "EntitlementChanged", "paid"),
    ]


def test_a_put_events_failure_tells_nothing_after_it_and_the_retry_tells_every_change_once_in_order(stack, portal):
    from billing_webhooks.domain import entitlement_updates

    tap = StreamTap(stack.endpoints)
    for status in ("uninstalled", "installed", "uninstalled"):
        _move(portal, status=status)
        assert entitlement_updates.recompute(MEMBER)[1]
    records = tap.records(expected=3)
    bus = portal["bus"]
    failures = [0]

    def second_change_fails_three_calls(entries: list[dict[str, Any]]) -> bool:
        if json.loads(entries[0]["Detail"])["reason"] == "paid" and failures[0] < 3:
            failures[0] += 1
            return True
        return False

    bus.failing = second_change_fails_three_calls
    assert _deliver_like_lambda(records) == 1  # one retry of the batch, from the change that failed
    told = _told(bus)
    assert [reason for _, _, reason in told] == ["not_installed", "paid", "not_installed"]
    sequences = [sequence for sequence, _, _ in told]
    assert sequences == list(range(sequences[0], sequences[0] + 3))  # once each, in order, no gap
    assert len({event["id"] for event in bus.put}) == 3


def test_a_change_that_tells_nothing_leaves_no_gap_in_the_sequence(stack, portal):
    from billing_webhooks.data import entitlements
    from billing_webhooks.domain import entitlement_updates

    tap = StreamTap(stack.endpoints)
    before = entitlements.get(MEMBER)
    # A check an hour later that only recounts DAYS: the answer's `until` moves by an hour.
    _move(portal, licence_ts=portal["now"] + 3600)
    assert entitlement_updates.recompute(MEMBER)[1]
    silent = entitlements.get(MEMBER)
    assert silent["entitlement_version"] == before["entitlement_version"] + 1
    assert silent["sequence"] == before["sequence"]
    _move(portal, status="uninstalled")
    assert entitlement_updates.recompute(MEMBER)[1]
    _deliver_like_lambda(tap.records(expected=2))
    assert _told(portal["bus"]) == [(before["sequence"] + 1, "EntitlementChanged", "not_installed")]


def test_deciding_again_with_nothing_new_writes_nothing_and_tells_nothing(stack, portal):
    from datetime import UTC, datetime, timedelta

    from billing_webhooks.data import entitlements
    from billing_webhooks.domain import entitlement_updates

    kept = entitlements.get(MEMBER)
    later = datetime.now(UTC) + timedelta(minutes=5)  # another instant, the same inputs
    assert entitlement_updates.recompute(MEMBER, later) == (kept["entitlement"], False)
    assert entitlements.get(MEMBER)["entitlement_version"] == kept["entitlement_version"]


class Gates:
    """Holds named threads just before their first entitlement write, until let go."""

    def __init__(self, monkeypatch: Any) -> None:
        from billing_webhooks.domain import entitlement_updates

        self.waiting: dict[str, threading.Event] = {}
        self.arrived: dict[str, threading.Event] = {}
        real = entitlement_updates.entitlements.put_entitlement

        def gated(*args: Any) -> bool:
            name = threading.current_thread().name
            if name in self.waiting and not self.waiting[name].is_set():
                self.arrived[name].set()
                assert self.waiting[name].wait(20)
            return real(*args)

        monkeypatch.setattr(entitlement_updates.entitlements, "put_entitlement", gated)

    def start(self, name: str) -> threading.Thread:
        from billing_webhooks.domain import entitlement_updates

        self.waiting[name], self.arrived[name] = threading.Event(), threading.Event()
        thread = threading.Thread(target=entitlement_updates.recompute, args=(MEMBER,), name=name)
        thread.start()
        assert self.arrived[name].wait(20), f"{name} never reached its write"
        return thread

    def release(self, name: str, thread: threading.Thread | None = None) -> None:
        self.waiting[name].set()
        if thread is not None:
            thread.join(20)


def _expired(portal: dict[str, Any]) -> None:
    """Newer input: a licence that ended ten days ago, its grace long over."""
    _move(portal, payment_expired="Y", licence_ts=portal["now"] - 10 * 86400)


def test_a_refused_write_that_read_the_newer_input_decides_again_and_its_answer_is_kept(stack, portal, monkeypatch):
    from billing_webhooks.data import entitlements

    gates = Gates(monkeypatch)
    _move(portal, status="uninstalled")
    older = gates.start("older")  # read the uninstall, holds before writing
    _expired(portal)
    newer = gates.start("newer")  # read the expired licence, holds before writing
    gates.release("older", older)  # the older input's write lands first
    assert entitlements.get(MEMBER)["entitlement"]["reason"] == "not_installed"
    gates.release("newer", newer)  # refused (another wrote first): reads again, decides again
    assert entitlements.get(MEMBER)["entitlement"]["reason"] == "licence_expired"


def test_a_write_that_read_the_older_input_never_lands_over_a_newer_answer(stack, portal, monkeypatch):
    from billing_webhooks.data import entitlements
    from billing_webhooks.domain import entitlement_updates

    gates = Gates(monkeypatch)
    _move(portal, status="uninstalled")
    older = gates.start("older")  # read the uninstall, holds before writing
    _expired(portal)
    assert entitlement_updates.recompute(MEMBER)[0]["reason"] == "licence_expired"  # lands first
    gates.release("older", older)  # its version is gone: refused, reads again, finds the answer holds
    kept = entitlements.get(MEMBER)
    assert kept["entitlement"]["reason"] == "licence_expired"
