"""The OpenAPI document of the webhook routes, generated from what each function binds (its model,
media types and authenticator) and the template's routes; `make openapi` writes `openapi.json`.

Served by the local API at GET /openapi.json (never deployed): senders read it, schemathesis
drives the property tests with it. A test keeps the committed file in step with the code.
"""

import inspect
import json
from typing import Any

from local import template

DOCUMENT = template.OPENAPI_DOCUMENT
PROBLEM = {"$ref": "#/components/schemas/Problem"}
REF_TEMPLATE = "#/components/schemas/{model}"

# What each refusal means on these routes (pipeline errors.py; the table in docs/design.md).
REFUSALS = {
    "400": "Malformed body: not JSON / not a form / not an object; bad base64 or UTF-8",
    "401": "No credentials",
    "403": "Wrong credentials, or a portal that is unknown, uninstalled or does not confirm",
    "409": "Received before with another payload; the stored record is unchanged",
    "413": "Body over 64 KiB",
    "415": "Content type not accepted here",
    "422": "A field is missing or invalid, or the type/event does not match the route",
    "503": "Storage unavailable; the delivery was parked and is replayed (Retry-After)",
}


def _webhook(route: template.Route) -> Any:
    """The pipeline.Webhook that the function's app.py binds, as Lambda would load it."""
    from local.server import LocalFunction

    return inspect.unwrap(LocalFunction(route).handler).__self__


def _components() -> dict[str, Any]:
    return {
        "Accepted": {
            "type": "object",
            "required": ["status", "notification_id", "type"],
            "properties": {"status": {"enum": ["stored", "duplicate", "stale"]}, "notification_id": {"type": "string"},
                           "type": {"type": "string"}},
        },
        "Problem": {
            "type": "object",
            "description": "RFC 9457 problem details",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                "detail": {"type": "string"},
                "errors": {"type": "array", "items": {"type": "object", "properties": {
                    "field": {"type": "string"}, "message": {"type": "string"}, "type": {"type": "string"}}}},
            },
        },
    }


def document() -> dict[str, Any]:
    schemas = _components()
    paths: dict[str, Any] = {}
    for route in template.routes():
        webhook = _webhook(route)
        model = webhook.model
        schema = model.model_json_schema(ref_template=REF_TEMPLATE)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
        body = {"$ref": REF_TEMPLATE.format(model=model.__name__)}
        billing = route.path.startswith("/billing/")
        responses: dict[str, Any] = {
            "200": {"description": "Stored, a duplicate of what is stored, or stored but older than what the installation holds (stale)",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}}},
        }
        refusals = dict(REFUSALS)
        if type(webhook.auth).__name__ == "PortalConfirms":  # it asks the portal
            refusals["502"] = "The portal did not confirm the install in time"
        for status, meaning in sorted(refusals.items()):
            responses[status] = {"description": meaning, "content": {"application/problem+json": {"schema": PROBLEM}}}
        operation: dict[str, Any] = {
            "operationId": route.function.removesuffix("Function"),
            "summary": (inspect.getdoc(model) or model.__name__).splitlines()[0],
            "requestBody": {"required": True,
                            "content": {media_type: {"schema": body} for media_type in sorted(webhook.media_types)}},
            "responses": responses,
        }
        if billing:
            operation["security"] = [{"bearer": []}, {"webhookToken": []}, {"tokenQuery": []}]
        else:
            operation["description"] = "Bitrix24 events carry their credentials in auth[...] of the body."
        paths[route.path] = {"post": operation}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Bitrix24 billing webhooks", "version": "1.0.0",
                 "description": "Webhook routes of the Bitrix24 ONAPP* events and the billing system's notifications."},
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "webhookToken": {"type": "apiKey", "in": "header", "name": "X-Webhook-Token"},
                "tokenQuery": {"type": "apiKey", "in": "query", "name": "token"},
            },
        },
    }


def text() -> str:
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    template.use_layer()
    DOCUMENT.write_text(text())
    print(DOCUMENT.relative_to(template.ROOT))


if __name__ == "__main__":
    main()
