"""The local stack's scheduled functions as the test clock's jobs (local/clock.py): each run at its
template rate through its own handler, and each able to say when it next has work, read from the
index (or queue) its job reads. Needs the handlers' environment in this process."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from local import template
from local.clock import ClockRunner, Job, TestClock, iso, scheduled_functions
from local.fake_bitrix24 import FakeBitrix24
from local.faults import outside_the_product
from local.server import LocalFunction
from local.streams import StreamPoller, settle_all

FAR = 2**40  # an epoch second past any deadline: "the soonest, whenever it is"


def _soonest_licence_check() -> float | None:
    from billing_webhooks.data import installations

    soonest = [
        int(page[0]["next_check_at"])
        for shard in range(installations.SYNC_SHARDS)
        if (page := installations.due(str(shard), FAR, limit=1)[0])
    ]
    return min(soonest, default=None)


def _soonest_deadline() -> float | None:
    from billing_webhooks.data import entitlements

    soonest = []
    for shard in range(entitlements.SHARDS):
        for member_id in entitlements.due(shard, FAR, limit=1):
            item = entitlements.get(member_id) or {}
            if item.get("changes_at") is not None:
                soonest.append(int(item["changes_at"]))
    return min(soonest, default=None)


def _soonest_alert_redrive() -> float | None:
    from billing_webhooks.data import notifications

    for record in notifications.expired_pending_alerts(datetime(9999, 1, 1, tzinfo=UTC)):
        return datetime.fromisoformat(str(record["alert_lease_until"]).replace("Z", "+00:00")).timestamp()
    return None


def _parked_now() -> float | None:
    """Now, when the rescue queue holds a parcel that can be received (a deferred one is hidden)."""
    from billing_webhooks import clock
    from billing_webhooks.recovery import parcels
    from billing_webhooks.settings import settings

    attributes = parcels.queue().get_queue_attributes(
        QueueUrl=settings().rescue_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return clock.epoch() if int(attributes.get("ApproximateNumberOfMessages", 0)) else None


# Each scheduled function's "when does it next have work": a schedule the clock cannot peek at
# would be run at every one of its instants, so every one must be here (tests hold it).
SOONEST_WORK: dict[str, Callable[[], float | None]] = {
    "LicenceSyncRunFunction": _soonest_licence_check,
    "EntitlementDeadlinesFunction": _soonest_deadline,
    "AlertRedriveFunction": _soonest_alert_redrive,
    "ReplayFunction": _parked_now,
}


def _scheduled_event(instant: float) -> dict[str, Any]:
    """What EventBridge hands a scheduled function (its fields are not read)."""
    return {"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "time": iso(instant)}


def _runner(name: str) -> Callable[[float], Any]:
    if name == "ReplayFunction":  # in AWS it invokes the webhook functions through Lambda; here, in process
        from local.replay import replay

        # moto hides a deferred parcel for wall-clock seconds, minutes of which are days on a moved
        # clock: here it is back at once, and the job's next instant on the clock is its retry.
        return lambda instant: replay(retry_seconds=0)
    function = LocalFunction(template.function(name))
    return lambda instant: function.invoke(_scheduled_event(instant))


def stack_jobs(parameters: dict[str, str] | None = None) -> list[Job]:
    """The template's scheduled functions, in template order."""
    return [
        Job(name, every, outside_the_product(SOONEST_WORK[name]), _runner(name))
        for name, every in scheduled_functions(parameters)
    ]


# What changes a table, a queue or a stream: a job's next work, or a stream's records, can only
# move after one of these.
WRITES = frozenset(
    {
        "dynamodb.PutItem",
        "dynamodb.UpdateItem",
        "dynamodb.DeleteItem",
        "dynamodb.BatchWriteItem",
        "dynamodb.TransactWriteItems",
        "sqs.SendMessage",
        "sqs.SendMessageBatch",
        "sqs.ChangeMessageVisibility",
        "sqs.DeleteMessage",
    }
)


class WriteCounter:
    """The stack's writes so far, counted on the handlers' boto3 session (data/aws.py's clients)."""

    def __init__(self) -> None:
        import boto3

        from billing_webhooks.data import aws

        self.count = 0
        boto3.DEFAULT_SESSION or boto3.setup_default_session()
        boto3.DEFAULT_SESSION.events.register("before-call", self._seen)
        # A client copies its session's hooks when it is made: one made before this hook would
        # never show it a write, and every job's peek would stay as first read (a job run at each
        # of its instants: 72 licence sync runs a simulated 6 hours, minutes of a test).
        aws.client.cache_clear()

    def _seen(self, model: Any, **_: Any) -> None:
        if f"{model.service_model.service_name}.{model.name}" in WRITES:
            self.count += 1

    def __call__(self) -> int:
        return self.count


def clock_runner(clock: TestClock, fake: FakeBitrix24, pollers: list[StreamPoller]) -> ClockRunner:
    """The stack's clock, its scheduled functions, and the fake's late deliveries, settled through
    `pollers` (in the order the streams feed each other)."""
    deliveries = Job("Bitrix24 deliveries", 0, fake.next_delivery, fake.deliver_due, outside_the_stack=True)
    return ClockRunner(clock, [*stack_jobs(), deliveries], settle=lambda: settle_all(pollers), writes=WriteCounter())
