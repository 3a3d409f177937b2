"""Write events/: one API Gateway HTTP API 2.0 event per function, its body a seed payload.

    .venv/bin/python -m local.make_events

Billing bodies are the seed examples unchanged; the Bitrix24 bodies (local/samples.py) are the
seed event plus the `member_id` and `application_token` every real event carries, and the app
lifecycle events alike, form-encoded as the wire sends them.
"""

import json
import os

from local import provision, samples, seeds, template
from local.server import http_api_event
from local.wire import php_form_encode

EVENTS = template.ROOT / "events"


def sample_events() -> dict[str, dict]:
    """{function directory name: event}."""
    billing = seeds.billing_seed_texts()
    events = {}
    for route in template.routes():
        headers = {"host": "127.0.0.1:3000", "user-agent": "sample-event"}
        if route.path.startswith("/bitrix24/"):
            body = php_form_encode(samples.BITRIX24_BODIES[route.code_dir.name]())
            headers["content-type"] = "application/x-www-form-urlencoded"
        else:
            body = billing[route.function.removesuffix("Function")]
            headers["content-type"] = "application/json"
            headers["authorization"] = f"Bearer {samples.BILLING_TOKEN}"
        event = http_api_event(route.method, route.path, "", headers, body.encode())
        event["requestContext"]["requestId"] = f"sample-{route.code_dir.name}"
        event["requestContext"]["time"] = "23/Nov/2026:00:00:00 +0000"
        event["requestContext"]["timeEpoch"] = 1795392000000
        events[route.code_dir.name] = event
    first_routes: dict[str, template.Route] = {}
    for route in template.read_routes():
        first_routes.setdefault(route.function, route)
    for route in first_routes.values():  # one event per read function: its first route, for account 504
        path = route.path.replace("{account_id}", "504")
        event = http_api_event(
            route.method,
            path,
            "",
            {"host": "127.0.0.1:3000", "user-agent": "sample-event"},
            b"",
            route_key=route.route_key,
            path_parameters={"account_id": "504"},
        )
        event["requestContext"]["requestId"] = f"sample-{route.code_dir.name}"
        event["requestContext"]["time"] = "23/Nov/2026:00:00:00 +0000"
        event["requestContext"]["timeEpoch"] = 1795392000000
        events[route.code_dir.name] = event
    events["account_projector"] = stream_event()
    return events


def stream_event() -> dict:
    """`sam local invoke AccountProjectorFunction -e events/account_projector.json`: the stream
    record NotificationsTable writes for the UnPaidInvoice seed, as Lambda hands it over."""
    template.use_layer()
    from billing_webhooks.data.notifications import build_record
    from billing_webhooks.data.toolkit import to_item
    from billing_webhooks.models.billing.unpaid_invoice import UnPaidInvoice

    notification = UnPaidInvoice.model_validate(seeds.billing_seeds()["UnPaidInvoice"])
    record = build_record(notification)
    record["received_at"] = "2026-11-23T00:00:00.000Z"
    keys = {name: {"S": record[name]} for name in ("notification_id", "notification_type")}
    stream_arn = "arn:aws:dynamodb:us-east-1:123456789012:table/NotificationsTable/stream/2026-11-23T00:00:00.000"
    return {
        "Records": [
            {
                "eventID": "sample-account-projector",
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "eventSourceARN": stream_arn,
                "dynamodb": {
                    "ApproximateCreationDateTime": 1795392000,
                    "Keys": keys,
                    "NewImage": to_item(record),
                    "SequenceNumber": "100000000000000000001",
                    "SizeBytes": 1024,
                    "StreamViewType": "NEW_IMAGE",
                },
            }
        ]
    }


def sam_local_env(dynamodb_port: int = 8000, moto_port: int = 5000) -> dict:
    """`sam local invoke --env-vars local/env.json`: the template's variables pointed at `make dev`.
    From inside SAM's container the host is host.docker.internal (Linux: --add-host host.docker.internal:host-gateway)."""
    host = "http://host.docker.internal"
    env = provision.handler_environment(
        {
            "AWS_ENDPOINT_URL_DYNAMODB": f"{host}:{dynamodb_port}",
            "AWS_ENDPOINT_URL_SNS": f"{host}:{moto_port}",
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": f"{host}:{moto_port}",
            "AWS_ENDPOINT_URL_SQS": f"{host}:{moto_port}",
            "AWS_ENDPOINT_URL_KMS": f"{host}:{moto_port}",
        }
    )
    return {"Parameters": env}


def main() -> None:
    EVENTS.mkdir(exist_ok=True)
    for name, event in sample_events().items():
        (EVENTS / f"{name}.json").write_text(json.dumps(event, indent=2) + "\n")
        print(f"events/{name}.json")
    # The committed file points at make dev's default ports; the same variables move it.
    ports = (int(os.environ.get("DYNAMODB_LOCAL_PORT") or 8000), int(os.environ.get("MOTO_PORT") or 5000))
    (template.ROOT / "local" / "env.json").write_text(json.dumps(sam_local_env(*ports), indent=2) + "\n")
    print("local/env.json")


if __name__ == "__main__":
    main()
