"""Warm deliveries in one container: run as `python -S -B warm.py <function> <events.json>` on the
same PYTHONPATH as cold.py. events.json: {"warmup": event, "deliveries": [distinct events]}.

Counts the AWS calls of a new delivery and of its duplicate from botocore's own `before-call`
event (on every botocore session), and times each delivery beside the raw boto3 conditional
PutItem of the very item it stored (under a fresh key) on the same table: the floor is what
storing the same record costs without the pipeline. Prints one JSON line."""

import json
import os
import sys
import time

import botocore.session
from harness import Context

calls: list[str] = []
stored_items: list[dict] = []
_init = botocore.session.Session.__init__


def _count(model, **_):
    calls.append(f"{model.service_model.service_name}.{model.name}")


def _keep_item(params, **_):
    if params.get("TableName") == os.environ["TABLE_NAME"]:
        stored_items.append(params["Item"])


def _counting_init(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    self.register("before-call", _count)
    self.register("before-parameter-build.dynamodb.PutItem", _keep_item)


botocore.session.Session.__init__ = _counting_init


with open(sys.argv[2]) as file:
    events = json.load(file)

import app  # noqa: E402

context = Context()
assert app.handler(events["warmup"], context)["statusCode"] == 200  # cold start, secrets cached

calls.clear()
first = app.handler(events["deliveries"][0], context)
first_calls = list(calls)
calls.clear()
duplicate = app.handler(events["deliveries"][0], context)
duplicate_calls = list(calls)
assert first["statusCode"] == duplicate["statusCode"] == 200, (first, duplicate)

# Each delivery, then the floor: a plain boto3 client's conditional PutItem of the item that delivery
# stored, under a fresh key. Interleaved, so that DynamoDB Local's drift touches both alike.
import boto3  # noqa: E402

client = boto3.client("dynamodb")
times, floor = [], []


def deliver(event: dict) -> dict:
    stored_items.clear()
    started = time.perf_counter()
    response = app.handler(event, context)
    times.append((time.perf_counter() - started) * 1000)
    assert response["statusCode"] == 200, response
    [item] = stored_items
    return item


def put_raw(item: dict, key: str) -> None:
    item = {**item, "notification_id": {"S": key}}
    started = time.perf_counter()
    client.put_item(
        TableName=os.environ["TABLE_NAME"], Item=item, ConditionExpression="attribute_not_exists(notification_id)"
    )
    floor.append((time.perf_counter() - started) * 1000)


item = deliver(events["deliveries"][1])
for index, event in enumerate(events["deliveries"][2:]):
    if index % 2:  # which goes first alternates: neither gains from the other warming DynamoDB Local
        item = deliver(event)
        put_raw(item, f"floor-{index}-{item['notification_id']['S']}")
    else:
        put_raw(item, f"floor-{index}-{item['notification_id']['S']}")
        item = deliver(event)

print(
    json.dumps({"times_ms": times, "floor_ms": floor, "first_calls": first_calls, "duplicate_calls": duplicate_calls})
)
