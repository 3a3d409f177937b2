"""Projector cost per stream record, warm: run as `python -S -B projector.py AccountProjectorFunction
<batches.json>` on the built function's PYTHONPATH. batches.json: {"warmup": event, "rounds":
[[event, fresh account key], ...]}, each event a stream batch of one account's new records.

Each round projects its batch into a fresh account, then (order alternating) the floor: a plain
boto3 client making the very conditional UpdateItems the projector made, one per part it
touched, on another fresh account. Prints one JSON line: per-record milliseconds of both."""

import json
import sys
import time

import botocore.session
from harness import Context

updates: list[dict] = []
_init = botocore.session.Session.__init__


def _keep(params, **_):
    updates.append(json.loads(json.dumps(params)))


def _recording_init(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    self.register("before-parameter-build.dynamodb.UpdateItem", _keep)


botocore.session.Session.__init__ = _recording_init

with open(sys.argv[2]) as file:
    batches = json.load(file)

import app  # noqa: E402
import boto3  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

context = Context()
assert app.handler(batches["warmup"], context)["batchItemFailures"] == []
client = boto3.client("dynamodb")
times, floor, parts = [], [], []


def project(event: dict) -> list[dict]:
    updates.clear()
    started = time.perf_counter()
    assert app.handler(event, context)["batchItemFailures"] == []
    times.append((time.perf_counter() - started) * 1000 / len(event["Records"]))
    parts.append(len(updates) / len(event["Records"]))
    return list(updates)


def raw(made: list[dict], account_key: str, records: int) -> None:
    started = time.perf_counter()
    for params in made:
        try:  # in the same order the same ones are refused: an older notification than a part holds
            client.update_item(**{**params, "Key": {**params["Key"], "account_key": {"S": account_key}}})
        except ClientError:
            pass
    floor.append((time.perf_counter() - started) * 1000 / records)


made = project(batches["rounds"][0][0])
for index, (event, floor_key) in enumerate(batches["rounds"][1:]):
    if index % 2:
        made = project(event)
        raw(made, floor_key, len(event["Records"]))
    else:
        raw(made, floor_key, len(event["Records"]))
        made = project(event)
print(json.dumps({"times_ms": times, "floor_ms": floor, "updates_per_record": parts}))
