"""`make load`: distinct deliveries plus a duplicate of every tenth, posted at a given concurrency
to a local stack of its own; then the table and the alert queue are counted.

LOAD_DELIVERIES (2000) distinct deliveries, LOAD_CONCURRENCY (32) at once. Each worker keeps its
connection alive; `--fresh-connections` (`make load ARGS=--fresh-connections`) opens a new one per
delivery, as webhook senders do, so every delivery also goes through the listen backlog. Exit
status 1 when a count is off or any answer is not 200.
"""

import argparse
import http.client
import json
import os
import random
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import boto3

from local import provision, traffic
from local.stack import LocalStack


@dataclass
class Result:
    distinct: int
    posted: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    records: int
    alerts: int
    expected_alerts: int
    parked: int
    fresh_connections: bool = False

    @property
    def ok(self) -> bool:
        return self.errors == 0 and self.records == self.distinct and self.alerts == self.expected_alerts

    def report(self) -> str:
        ordered = sorted(self.latencies_ms)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * len(ordered)) - 1)]
        return "\n".join(
            [
                f"posted      {self.posted} ({self.distinct} distinct + {self.posted - self.distinct} duplicates), "
                f"{'a fresh connection per delivery' if self.fresh_connections else 'keep-alive connections'}",
                f"errors      {self.errors}",
                f"throughput  {self.posted / self.seconds:.0f} deliveries/s ({self.seconds:.1f} s)",
                f"latency     p50 {statistics.median(ordered):.1f} ms, p99 {p99:.1f} ms, max {ordered[-1]:.1f} ms",
                f"records     {self.records} (expected {self.distinct})",
                f"alerts      {self.alerts} (expected {self.expected_alerts}: UnPaidInvoice + TrialReminder)",
                f"parked      {self.parked} (deliveries answered 503, kept for `make replay`)",
                "OK" if self.ok else "FAILED",
            ]
        )


class Poster:
    """POSTs deliveries to the local API: on one kept-alive connection per worker thread, or on a
    fresh connection per delivery (`Connection: close`)."""

    def __init__(self, api_url: str, fresh_connections: bool) -> None:
        self.address = api_url.removeprefix("http://")
        self.fresh_connections = fresh_connections
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        connection = None if self.fresh_connections else getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = http.client.HTTPConnection(self.address, timeout=60)
        return connection

    def post(self, delivery: traffic.Delivery) -> tuple[int, float]:
        """(status, latency in ms); status 0 when the connection failed (reset, refused, timeout)."""
        headers = {**delivery.headers, "Connection": "close" if self.fresh_connections else "keep-alive"}
        started = time.perf_counter()
        connection = self._connection()
        try:
            connection.request("POST", delivery.path, body=delivery.body, headers=headers)
            response = connection.getresponse()
            response.read()
            status = response.status
        except OSError:
            status = 0
            self._local.connection = None
            connection.close()
        if self.fresh_connections:
            connection.close()
        return status, (time.perf_counter() - started) * 1000


def _alerts(stack: LocalStack) -> int:
    """Alerts on local-alerts, each counted once by its notification key (SQS may repeat one)."""
    sqs = boto3.client("sqs", endpoint_url=stack.endpoints["AWS_ENDPOINT_URL_SQS"])
    url = stack.resources["queues"][provision.ALERTS_QUEUE]
    keys = set()
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
        for message in batch:
            keys.add(json.loads(json.loads(message["Body"])["Message"])["notification_key"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return len(keys)


def _parked(stack: LocalStack) -> int:
    sqs = boto3.client("sqs", endpoint_url=stack.endpoints["AWS_ENDPOINT_URL_SQS"])
    attributes = sqs.get_queue_attributes(
        QueueUrl=stack.resources["queues"]["RescueQueue"], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def _records(stack: LocalStack) -> int:
    dynamodb = boto3.client("dynamodb", endpoint_url=stack.endpoints["AWS_ENDPOINT_URL_DYNAMODB"])
    pages = dynamodb.get_paginator("scan").paginate(TableName="NotificationsTable", Select="COUNT")
    return sum(page["Count"] for page in pages)


def run(
    stack: LocalStack,
    api_url: str,
    distinct: int,
    concurrency: int,
    run_name: str = "load",
    fresh_connections: bool = False,
) -> Result:
    deliveries = traffic.distinct_deliveries(distinct, run=run_name)
    posts = deliveries + deliveries[::10]  # a duplicate of every tenth
    random.Random(7).shuffle(posts)  # duplicates arrive among the others, some at the same time
    poster = Poster(api_url, fresh_connections)
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        answers = list(pool.map(poster.post, posts))
    seconds = time.perf_counter() - started
    return Result(
        distinct=distinct,
        posted=len(posts),
        errors=sum(status != 200 for status, _ in answers),
        seconds=seconds,
        latencies_ms=[latency for _, latency in answers],
        records=_records(stack),
        alerts=_alerts(stack),
        expected_alerts=sum(delivery.alerts for delivery in deliveries),
        parked=_parked(stack),
        fresh_connections=fresh_connections,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh-connections", action="store_true", help="a new TCP connection per delivery")
    fresh_connections = parser.parse_args().fresh_connections
    distinct = int(os.environ.get("LOAD_DELIVERIES", 2000))
    concurrency = int(os.environ.get("LOAD_CONCURRENCY", 32))
    print(f"Starting a local stack; then {distinct} distinct deliveries at concurrency {concurrency} ...", flush=True)
    with LocalStack() as stack:
        stack.export_to_process()
        os.environ["POWERTOOLS_LOG_LEVEL"] = "ERROR"
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"  # EMF lines on stdout would drown the report
        from local.server import LocalApi

        api = LocalApi(0, log=None).start()
        try:
            result = run(stack, api.url, distinct, concurrency, fresh_connections=fresh_connections)
        finally:
            api.stop()
    print(result.report())
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
