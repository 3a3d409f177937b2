"""The cold-start floor: the least a Python function can do with the same delivery. Run as
`python -S -B floor.py <event.json>` on the same PYTHONPATH as cold.py: import boto3, create the
DynamoDB client, define and validate the payload with a plain pydantic model, one conditional
PutItem. Prints one JSON line."""

import json
import os
import sys
import time

from harness import peak_rss_mb, reset_peak_rss

reset_peak_rss()

with open(sys.argv[1]) as file:
    event = json.load(file)

started = time.perf_counter()
import base64  # noqa: E402
from urllib.parse import parse_qsl  # noqa: E402

import boto3  # noqa: E402
from pydantic import BaseModel, ConfigDict  # noqa: E402

client = boto3.client("dynamodb")
body = base64.b64decode(event["body"]).decode() if event["isBase64Encoded"] else event["body"]

if event["rawPath"].startswith("/bitrix24/"):
    class Payload(BaseModel):
        model_config = ConfigDict(extra="allow")
        event: str
        ts: int
        data: dict[str, str]
        auth: dict[str, str]

    fields: dict = {}
    for key, value in parse_qsl(body):  # one level of PHP brackets: data[CODE] -> data.CODE
        head, _, rest = key.partition("[")
        if rest:
            fields.setdefault(head, {})[rest.rstrip("]")] = value
        else:
            fields[key] = value
    payload = Payload.model_validate(fields)
    key = (f"{payload.auth['member_id']}-{payload.ts}", payload.event)
else:
    class Payload(BaseModel):
        model_config = ConfigDict(extra="allow")
        id: str
        type: str
        code: str
        account_id: int
        original_event_date: str  # plain: the wire format "2019-03-05 17:10:22 +02:00" as text
        details: dict

    payload = Payload.model_validate_json(body)
    key = (payload.id, payload.type)

client.put_item(
    TableName=os.environ["TABLE_NAME"],
    Item={"notification_id": {"S": f"floor-{key[0]}-{time.time_ns()}"}, "notification_type": {"S": key[1]},
          "payload": {"S": body}},
    ConditionExpression="attribute_not_exists(notification_id)",
)
answered = time.perf_counter()
print(json.dumps({"cold_ms": (answered - started) * 1000, "status": 200,
                  "peak_rss_mb": peak_rss_mb()}))
