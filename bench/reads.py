"""A read route, warm, beside the raw DynamoDB calls it makes: run as `python -S -B reads.py
AccountsApiFunction <reads.json>` on the built function's PYTHONPATH. reads.json: {"event": the
GET event, "floor": "queries" or "get_item", "table", and "account_key" or "member_id"}.
- queries: GET /accounts/{account_id} beside its raw Queries (the singles, a page of each list,
  the open invoices, each list's COUNT);
- get_item: GET /entitlements/{member_id} beside a raw GetItem of the same item.
Alternates the two, prints one JSON line of milliseconds."""

import json
import sys
import time

from harness import Context

with open(sys.argv[2]) as file:
    reads = json.load(file)

import app  # noqa: E402
import boto3  # noqa: E402

context = Context()
client = boto3.client("dynamodb")
times, floor = [], []


def get() -> None:
    started = time.perf_counter()
    response = app.handler(reads["event"], context)
    times.append((time.perf_counter() - started) * 1000)
    assert response["statusCode"] == 200, response


def get_item() -> None:
    started = time.perf_counter()
    item = client.get_item(TableName=reads["table"], Key={"member_id": {"S": reads["member_id"]}}, ConsistentRead=True)[
        "Item"
    ]
    floor.append((time.perf_counter() - started) * 1000)
    assert item


def query() -> None:
    started = time.perf_counter()
    key = {":key": {"S": reads["account_key"]}}
    items = client.query(
        TableName=reads["table"],
        KeyConditionExpression="account_key = :key AND part >= :first",
        ExpressionAttributeValues={**key, ":first": {"S": "profile"}},
    )["Items"]
    for prefix in ("invoice#", "product#", "balance#"):
        listed = {**key, ":prefix": {"S": prefix}}
        items += client.query(
            TableName=reads["table"],
            KeyConditionExpression="account_key = :key AND begins_with(part, :prefix)",
            ExpressionAttributeValues=listed,
            Limit=20,
        )["Items"]
        client.query(
            TableName=reads["table"],
            KeyConditionExpression="account_key = :key AND begins_with(part, :prefix)",
            ExpressionAttributeValues=listed,
            Select="COUNT",
        )
    client.query(
        TableName=reads["table"],
        IndexName="open-invoices",
        Limit=100,
        KeyConditionExpression="open_account = :key AND begins_with(part, :prefix)",
        ExpressionAttributeValues={**key, ":prefix": {"S": "invoice#"}},
    )
    floor.append((time.perf_counter() - started) * 1000)
    assert items


raw = get_item if reads.get("floor") == "get_item" else query
get()
raw()
for index in range(int(reads.get("rounds", 300))):
    (get, raw)[index % 2]()
    (raw, get)[index % 2]()
print(json.dumps({"times_ms": times, "floor_ms": floor}))
