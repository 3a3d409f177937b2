"""A table's stream handed to a function as Lambda's event source mapping does, on DynamoDB Local.

The poller reads DynamoDB Local's own stream (GetRecords, every shard), keeps the records the
template's FilterCriteria admit, and calls the function's handler with the event Lambda sends:
`{"Records": [{"eventID", "eventName", "eventSource": "aws:dynamodb", "dynamodb": {...}, …}]}`
in batches of the template's BatchSize. It honours partial batch responses like Lambda: the
batch is retried from the first failed record, up to MaximumRetryAttempts, then described on the
on-failure queue. Used by `make dev` and the tests; never deployed.
"""

import json
import threading
import time
from datetime import datetime
from typing import Any

import boto3

from local import provision, template
from local.server import LocalFunction

POLL_SECONDS = 0.2


def _matches(pattern: Any, data: Any) -> bool:
    """EventBridge-style filter pattern (the subset the template uses): nested keys, value lists."""
    if isinstance(pattern, dict):
        return isinstance(data, dict) and all(_matches(want, data.get(key)) for key, want in pattern.items())
    if any(isinstance(want, dict) and "exists" in want for want in pattern):  # [{"exists": true}]
        return (data is not None) == next(want["exists"] for want in pattern if isinstance(want, dict))
    return data in pattern


def _lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    change = dict(record["dynamodb"])
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):  # boto3 reads it as a datetime; Lambda sends epoch seconds
        change["ApproximateCreationDateTime"] = int(created.timestamp())
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", "us-east-1"),
        "dynamodb": change,
        "eventSourceARN": stream_arn,
    }


class StreamPoller:
    def __init__(
        self, function_name: str, endpoints: dict[str, str], log: Any = None, starting_position: str | None = None
    ) -> None:
        resource = template.load()["Resources"][function_name]
        source = next(
            event["Properties"] for event in resource["Properties"]["Events"].values() if event["Type"] == "DynamoDB"
        )
        self.table = source["Stream"]["Fn::GetAtt"][0]
        self.batch_size = int(source.get("BatchSize", 100))
        # LATEST: from when it starts (a test's own poller, on a table other tests wrote before it).
        self.starting_position = starting_position or source.get("StartingPosition", "TRIM_HORIZON")
        self.retries = int(source.get("MaximumRetryAttempts", 2))
        self.filters = [json.loads(item["Pattern"]) for item in source.get("FilterCriteria", {}).get("Filters", [])]
        failure_queue = source.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination", {})
        queue_name = failure_queue.get("Fn::GetAtt", [None])[0]
        self.failure_queue_url = (
            provision.queue_url(endpoints["AWS_ENDPOINT_URL_SQS"], queue_name) if queue_name else None
        )
        self.function = LocalFunction(template.function(function_name))
        self.endpoints, self.log = endpoints, log or (lambda line: None)
        self.stopped = threading.Event()
        self.positions: dict[str, str] = {}  # shard id -> the last sequence number read there
        self.started: set[str] = set()  # shards given StartingPosition at the first look
        self.ready = threading.Event()  # set once it has its place in every shard (LATEST: from then on)
        self.quiet_passes = 0  # passes over every shard that found nothing to hand on
        self.delivered = 0  # batches handed to the function
        self.nudge = threading.Event()  # skips the pause between passes (settle)
        self.thread = threading.Thread(target=self._run, name=f"stream-{function_name}", daemon=True)

    def start(self) -> "StreamPoller":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.nudge.set()
        self.thread.join(timeout=5)

    def settle(self, timeout: float = 60) -> int:
        """Returns once every record written before the call has been handed on (two quiet passes:
        the second began after the call); how many batches it handed on meanwhile."""
        mark, delivered = self.quiet_passes, self.delivered
        deadline = time.monotonic() + timeout
        while self.quiet_passes < mark + 2:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise TimeoutError(f"{self.function.route.function}'s stream did not settle in {timeout} s")
            self.nudge.set()
            time.sleep(0.005)
        return self.delivered - delivered

    def _clients(self) -> tuple[Any, Any, Any]:
        url = self.endpoints["AWS_ENDPOINT_URL_DYNAMODB"]
        return (
            boto3.client("dynamodb", endpoint_url=url),
            boto3.client("dynamodbstreams", endpoint_url=url),
            boto3.client("sqs", endpoint_url=self.endpoints["AWS_ENDPOINT_URL_SQS"]),
        )

    def _iterator(self, streams: Any, arn: str, shard_id: str, first_look: bool) -> str | None:
        """Where to read a shard: after the last record this poller saw there (its place survives
        DynamoDB Local's hiccups, as Lambda's checkpoint does); else, at the first look, where
        StartingPosition says; else from its start (a shard
        that opened later: DynamoDB Local opens the first at the table's first write)."""
        if shard_id in self.positions:
            return streams.get_shard_iterator(
                StreamArn=arn,
                ShardId=shard_id,
                ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                SequenceNumber=self.positions[shard_id],
            )["ShardIterator"]
        if first_look or shard_id in self.started:  # a start taken but never read from: taken again
            self.started.add(shard_id)
            position = self.starting_position
        else:
            position = "TRIM_HORIZON"
        return streams.get_shard_iterator(StreamArn=arn, ShardId=shard_id, ShardIteratorType=position)["ShardIterator"]

    def _run(self) -> None:
        looked = False
        while not self.stopped.is_set():
            iterators: dict[str, str | None] = {}  # shard id -> next iterator (None: closed and read)
            try:
                dynamodb, streams, sqs = self._clients()
                arn = dynamodb.describe_table(TableName=self.table)["Table"]["LatestStreamArn"]
                while not self.stopped.is_set():
                    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
                        if shard["ShardId"] not in iterators:
                            iterators[shard["ShardId"]] = self._iterator(streams, arn, shard["ShardId"], not looked)
                    looked = True  # only once the first look took: DynamoDB Local may refuse it at first
                    busy = False
                    for shard_id, iterator in list(iterators.items()):
                        if iterator is None:
                            continue
                        answer = streams.get_records(ShardIterator=iterator, Limit=self.batch_size)
                        iterators[shard_id] = answer.get("NextShardIterator")
                        records = [_lambda_record(record, arn) for record in answer["Records"]]
                        admitted = [
                            record
                            for record in records
                            if not self.filters or any(_matches(pattern, record) for pattern in self.filters)
                        ]
                        if admitted:
                            busy = True
                            self._deliver(admitted, sqs)
                            self.delivered += 1
                        if records:
                            self.positions[shard_id] = records[-1]["dynamodb"]["SequenceNumber"]
                    self.ready.set()  # every shard read once: from here on, nothing is passed by
                    if not busy:
                        self.quiet_passes += 1
                        self.nudge.wait(POLL_SECONDS)
                        self.nudge.clear()
            except Exception as error:  # DynamoDB Local restarting (an outage test): go on from where we were
                code = getattr(error, "response", {}).get("Error", {}).get("Code")
                if code != "TrimmedDataAccessException":  # DynamoDB Local's answer while a new stream opens: routine
                    self.log(f"  stream poller: {error.__class__.__name__}; retrying")
                self.stopped.wait(1)

    def _deliver(self, records: list[dict[str, Any]], sqs: Any) -> None:
        """One batch, retried from its first failed record as Lambda does (backing off a little), then
        given up on; at once when the poller is stopped (the stack going down fails every try)."""
        for attempt in range(self.retries + 1):
            if attempt and self.stopped.wait(min(0.05 * 2**attempt, 1.0)):
                return
            try:
                answer = self.function.invoke({"Records": records}) or {}
                failed = {item["itemIdentifier"] for item in answer.get("batchItemFailures", [])}
            except Exception:  # the function itself failed: the whole batch again
                failed = {records[0]["dynamodb"]["SequenceNumber"]}
            if not failed:
                return
            first = next(
                index for index, record in enumerate(records) if record["dynamodb"]["SequenceNumber"] in failed
            )
            records = records[first:]
        self.log(f"  stream poller: {len(records)} record(s) given up on after {self.retries} retries")
        if self.failure_queue_url:
            sqs.send_message(
                QueueUrl=self.failure_queue_url,
                MessageBody=json.dumps(
                    {
                        "function": self.function.route.function,
                        "records": len(records),
                        "first_sequence_number": records[0]["dynamodb"]["SequenceNumber"],
                        "last_sequence_number": records[-1]["dynamodb"]["SequenceNumber"],
                    }
                ),
            )


def settle_all(pollers: list[StreamPoller]) -> None:
    """Every poller settled, in the order given (a stream's function may write what the next one
    reads), again until a round hands on nothing: the stack is quiet."""
    while sum(poller.settle() for poller in pollers):
        pass
