"""The OpenAPI document of the webhook routes, generated from what each function binds (its model,
media types and authenticator) and the template's routes; `make openapi` writes `openapi.json`.

Served by the local API at GET /openapi.json (never deployed): senders read it, schemathesis
drives the property tests with it. A test keeps the committed file in step with the code.
"""

import inspect
import json
import os
from typing import Any

from local import provision, template
from local.server import LocalFunction

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
    return inspect.unwrap(LocalFunction(route).handler).__self__


def _components() -> dict[str, Any]:
    return {
        "Accepted": {
            "type": "object",
            "required": ["status", "notification_id", "type"],
            "properties": {
                "status": {"enum": ["stored", "duplicate", "stale"]},
                "notification_id": {"type": "string"},
                "type": {"type": "string"},
                "detail": {"type": "string", "description": "Why, where the status alone would puzzle (stale)"},
            },
        },
        "Problem": {
            "type": "object",
            "description": "RFC 9457 problem details",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "field": {"type": "string"},
                            "message": {"type": "string"},
                            "type": {"type": "string"},
                        },
                    },
                },
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
            "200": {
                "description": "Stored, a duplicate of what is stored, or stored but older than what the installation holds (stale)",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}},
            },
        }
        refusals = dict(REFUSALS)
        if type(webhook.auth).__name__ == "PortalConfirms":  # it asks the portal
            refusals["502"] = "The portal did not confirm the install in time"
        for status, meaning in sorted(refusals.items()):
            responses[status] = {"description": meaning, "content": {"application/problem+json": {"schema": PROBLEM}}}
        operation: dict[str, Any] = {
            "operationId": route.function.removesuffix("Function"),
            "summary": (inspect.getdoc(model) or model.__name__).splitlines()[0],
            "requestBody": {
                "required": True,
                "content": {media_type: {"schema": body} for media_type in sorted(webhook.media_types)},
            },
            "responses": responses,
        }
        if billing:
            operation["security"] = [{"bearer": []}, {"webhookToken": []}, {"tokenQuery": []}]
        else:
            operation["description"] = "Bitrix24 events carry their credentials in auth[...] of the body."
        paths[route.path] = {"post": operation}
    for route in template.read_routes():
        paths.setdefault(route.path, {})["get"] = _read_operation(route)
    schemas.update(READ_SCHEMAS)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Bitrix24 billing webhooks",
            "version": "1.0.0",
            "description": "Webhook routes of the Bitrix24 ONAPP* events and the billing system's notifications, "
            "and the private read API of accounts and portals.",
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "webhookToken": {"type": "apiKey", "in": "header", "name": "X-Webhook-Token"},
                "tokenQuery": {"type": "apiKey", "in": "query", "name": "token"},
                "sigv4": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "AWS Signature Version 4 (API Gateway's AWS_IAM authorizer); `make dev` does not check it",
                },
            },
        },
    }


_NULLABLE_OBJECT = {"type": ["object", "null"]}
READ_SCHEMAS: dict[str, Any] = {
    "Account": {
        "type": "object",
        "description": "Where an account stands: a pure function of its notifications (docs/accounts.md). Bounded "
        "whatever the account's size: up to 100 open invoices, the first page of each list, counts, "
        "and a cursor per list for /accounts/{account_id}/invoices, /products and /balances",
        "required": [
            "account_id",
            "account_code",
            "currency",
            "language",
            "state",
            "trial",
            "open_invoices",
            "invoices",
            "products",
            "balances",
            "counts",
            "cursors",
        ],
        "properties": {
            "account_id": {"type": "integer"},
            "account_code": {"type": ["string", "null"]},
            "currency": {"type": ["string", "null"]},
            "language": {"type": ["string", "null"]},
            "state": {
                **_NULLABLE_OBJECT,
                "properties": {name: {} for name in ("state", "date_from", "date_to", "notification_id")},
            },
            "trial": {**_NULLABLE_OBJECT, "properties": {"days_left": {}, "ends_on": {}}},
            "open_invoices": {"type": "array", "maxItems": 100, "items": {"$ref": "#/components/schemas/Invoice"}},
            "invoices": {"type": "array", "maxItems": 20, "items": {"$ref": "#/components/schemas/Invoice"}},
            "products": {"type": "array", "maxItems": 20, "items": {"$ref": "#/components/schemas/Product"}},
            "balances": {"type": "array", "maxItems": 20, "items": {"$ref": "#/components/schemas/Balance"}},
            "counts": {
                "type": "object",
                "required": ["open_invoices", "invoices", "products", "balances"],
                "additionalProperties": {"type": "integer"},
            },
            "cursors": {
                "type": "object",
                "required": ["open_invoices", "invoices", "products", "balances"],
                "additionalProperties": {"type": ["string", "null"]},
            },
        },
    },
    "Invoice": {
        "type": "object",
        "required": ["invoice_id", "status"],
        "properties": {
            "invoice_id": {"description": "as sent (an integer)"},
            "status": {"enum": ["issued", "unpaid", "paid"]},
            "issued": _NULLABLE_OBJECT,
            "unpaid": _NULLABLE_OBJECT,
            "paid": _NULLABLE_OBJECT,
        },
    },
    "Product": {"type": "object", "required": ["sold_product_id", "state"]},
    "Balance": {
        "type": "object",
        "required": ["name", "value", "as_of"],
        "properties": {"name": {"type": "string", "description": "as sent, any Unicode and length"}},
    },
    **{
        f"{name.title()}Page": {
            "type": "object",
            "required": ["account_id", name, "cursor"],
            "properties": {
                "account_id": {"type": "integer"},
                "cursor": {"type": ["string", "null"]},
                name: {
                    "type": "array",
                    "maxItems": 100,
                    "items": {"$ref": f"#/components/schemas/{name.title()[:-1]}"},
                },
            },
        }
        for name in ("invoices", "products", "balances")
    },
    "History": {
        "type": "object",
        "required": ["account_id", "notifications", "cursor"],
        "properties": {
            "account_id": {"type": "integer"},
            "cursor": {"type": ["string", "null"]},
            "notifications": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["notification_id", "notification_type", "event_time", "payload"],
                },
            },
        },
    },
    "Portal": {
        "type": "object",
        "required": ["member_id", "domain", "status", "licence"],
        "properties": {
            "licence": {
                "type": "object",
                "required": ["status", "source", "as_of"],
                "properties": {"source": {"enum": ["app.info", "ONAPPPAYMENT", "PAYMENT_REQUIRED"]}},
            },
            "sync": {"type": "object", "required": ["reachable", "next_check_at"]},
        },
    },
    "Entitlement": {
        "type": "object",
        "description": "May the portal use the app right now, and why (docs/entitlements.md): one GetItem",
        "required": ["member_id", "entitled", "reason", "until", "grace_until", "licence", "account", "as_of"],
        "properties": {
            "member_id": {"type": "string"},
            "entitled": {"type": "boolean"},
            "reason": {"type": "string"},
            "until": {"type": ["string", "null"]},
            "grace_until": {"type": ["string", "null"]},
            "as_of": {"type": "string"},
            "licence": {"type": "object", "required": ["state", "source", "as_of"]},
            "account": {
                **_NULLABLE_OBJECT,
                "properties": {name: {} for name in ("account_id", "state", "overdue_invoices", "trial")},
            },
        },
    },
}
_READS = {
    "/accounts/{account_id}": ("GetAccount", "Where the account stands", "Account"),
    "/accounts/{account_id}/notifications": (
        "GetAccountHistory",
        "The account's notifications, newest event first",
        "History",
    ),
    "/portals/{member_id}": ("GetPortal", "A portal's installation and licence (never a token)", "Portal"),
    "/entitlements/{member_id}": ("GetEntitlement", "May the portal use the app now, and why", "Entitlement"),
    **{
        f"/accounts/{{account_id}}/{name}": (
            f"GetAccount{name.title()}",
            f"A page of the account's {name}, in key order",
            f"{name.title()}Page",
        )
        for name in ("invoices", "products", "balances")
    },
}


def _read_operation(route: template.Route) -> dict[str, Any]:
    operation_id, summary, schema = _READS[route.path]
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in ("account_id", "member_id")
        if f"{{{name}}}" in route.path
    ]
    if route.path.endswith("/invoices"):
        parameters.append({"name": "status", "in": "query", "schema": {"enum": ["issued", "unpaid", "paid"]}})
    if route.path.endswith(("/notifications", "/invoices", "/products", "/balances")):
        parameters += [
            *(
                [{"name": "type", "in": "query", "schema": {"type": "string", "maxLength": 64}}]
                if route.path.endswith("/notifications")
                else []
            ),
            {
                "name": "limit",
                "in": "query",
                "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
            },
            {
                "name": "cursor",
                "in": "query",
                "schema": {"type": "string"},
                "description": "The previous page's cursor",
            },
        ]
    problem = {"content": {"application/problem+json": {"schema": PROBLEM}}}
    return {
        "operationId": operation_id,
        "summary": summary,
        "security": [{"sigv4": []}],
        "parameters": parameters,
        "responses": {
            "200": {
                "description": summary,
                "content": {"application/json": {"schema": {"$ref": REF_TEMPLATE.format(model=schema)}}},
            },
            "400": {"description": "A cursor or limit this API did not give", **problem},
            "403": {"description": "Not signed by a principal the vendor granted (API Gateway, AWS_IAM)"},
            "404": {"description": "No such account or portal", **problem},
            "503": {"description": "Storage unavailable; retry", **problem},
        },
    }


def text() -> str:
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    # Loading a function reads its settings: the template's environment, resources named as locally.
    os.environ.update(
        {
            name: value
            for name, value in template.global_environment(provision.physical_ids()).items()
            if name not in os.environ
        }
    )
    template.use_layer()
    DOCUMENT.write_text(text())
    print(DOCUMENT.relative_to(template.ROOT))


if __name__ == "__main__":
    main()
