"""Reach the running `make dev` stack from another process: `make replay`, `make rebuild-accounts`
and `billing-webhooks --local` run the handlers' code against it, with the environment its
functions have. Same port variables as `make dev` (DYNAMODB_LOCAL_PORT, MOTO_PORT)."""

import json
import os

from local import provision, services, template

# What `make dev` writes for the others: how to reach its fake Bitrix24 (install replays call it).
DEV_STATE = template.ROOT / ".cache" / "make-dev.json"


def dev_endpoints() -> dict[str, str]:
    return services.endpoint_environment(f"http://127.0.0.1:{os.environ.get('DYNAMODB_LOCAL_PORT', 8000)}",
                                         f"http://127.0.0.1:{os.environ.get('MOTO_PORT', 5000)}")


def attach() -> dict[str, str]:
    """This process gets the functions' environment on the running stack, and the layer."""
    endpoints = dev_endpoints()
    os.environ.update(provision.handler_environment(endpoints))
    if DEV_STATE.exists():
        os.environ.update(json.loads(DEV_STATE.read_text()))
    os.environ["POWERTOOLS_LOG_LEVEL"] = os.environ.get("DEV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    template.use_layer()
    return endpoints
