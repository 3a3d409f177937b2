"""The cold-start floor: the least a Python function can do with the same delivery, making the
same calls. Run as `python -S -B floor.py <event.json> <calls.json>` on the same PYTHONPATH as
cold.py: import boto3, define and validate the payload with a plain pydantic model, then make,
with plain boto3 clients and urllib, every call the function made on that delivery (record.py):
its secret reads, its writes (the record under a fresh key), an alert's Publish, a portal's
app.info and binds. A conditional write refused is an answer like any other. Prints one JSON line."""

import json
import os
import sys
import time

from harness import peak_rss_mb, reset_peak_rss

reset_peak_rss()

with open(sys.argv[1]) as file:
    event = json.load(file)
with open(sys.argv[2]) as file:
    calls = json.load(file)

started = time.perf_counter()
import base64  # noqa: E402
from urllib.parse import parse_qsl  # noqa: E402

import boto3  # noqa: E402
from botocore import xform_name  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from pydantic import BaseModel, ConfigDict  # noqa: E402

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

clients: dict = {}


def _bytes_back(value):
    if isinstance(value, dict):
        if set(value) == {"__bytes__"}:
            return base64.b64decode(value["__bytes__"])
        return {name: _bytes_back(child) for name, child in value.items()}
    if isinstance(value, list):
        return [_bytes_back(child) for child in value]
    return value


for service, operation, params in calls["aws"]:
    params = _bytes_back(params)
    if operation == "PutItem" and params.get("TableName") == os.environ["TABLE_NAME"]:
        params["Item"]["notification_id"] = {"S": f"floor-{key[0]}-{time.time_ns()}"}
    if service not in clients:
        clients[service] = boto3.client(service)
    try:
        getattr(clients[service], xform_name(operation))(**params)
    except ClientError:
        pass
if calls["https"]:
    import urllib.request

    for url, data in calls["https"]:
        urllib.request.urlopen(urllib.request.Request(url, data=data.encode() if data else None), timeout=5).read()
answered = time.perf_counter()
print(json.dumps({"cold_ms": (answered - started) * 1000, "status": 200, "peak_rss_mb": peak_rss_mb()}))
