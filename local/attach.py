"""Reach the running `make dev` stack from another process: `make replay`, `make rebuild-accounts`,
`make records`, `make alerts` and `billing-webhooks --local` run the handlers' code against it,
with the environment its functions have. `make dev` writes where it listens (its ports, its fake
Bitrix24) to .cache/make-dev.json; DYNAMODB_LOCAL_PORT and MOTO_PORT, when set, win."""

import json
import os
import socket

from local import provision, services, template

# What `make dev` writes for the others: its ports and how to reach its fake Bitrix24.
DEV_STATE = template.ROOT / ".cache" / "make-dev.json"
PORT_VARIABLES = {"dynamodb": ("DYNAMODB_LOCAL_PORT", 8000), "moto": ("MOTO_PORT", 5000)}
PORT_VARIABLES_NAMES = {variable for variable, _ in PORT_VARIABLES.values()}


class NoDevStack(RuntimeError):
    """No `make dev` stack answers where we looked: the message says where, and what moves it."""


def _dev_state() -> dict[str, str]:
    try:
        return json.loads(DEV_STATE.read_text())
    except (OSError, ValueError):
        return {}


def dev_ports() -> dict[str, int]:
    """Where the running `make dev` listens: the variables if set, else what it wrote, else defaults."""
    state = _dev_state()
    return {
        service: int(os.environ.get(variable) or state.get(variable) or default)
        for service, (variable, default) in PORT_VARIABLES.items()
    }


def dev_endpoints() -> dict[str, str]:
    ports = dev_ports()
    return services.endpoint_environment(f"http://127.0.0.1:{ports['dynamodb']}", f"http://127.0.0.1:{ports['moto']}")


def check_listening(ports: dict[str, int] | None = None) -> None:
    """NoDevStack, naming the address tried and the variable that moves it, when nothing listens."""
    for service, port in (ports or dev_ports()).items():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            variable = PORT_VARIABLES[service][0]
            raise NoDevStack(
                f"no `make dev` stack answers at 127.0.0.1:{port} ({service}): start `make dev`, "
                f"or set {variable} to the port it printed"
            ) from None


def attach() -> dict[str, str]:
    """This process gets the functions' environment on the running stack, and the layer."""
    check_listening()
    endpoints = dev_endpoints()
    os.environ.update(provision.handler_environment(endpoints))
    os.environ.update({name: value for name, value in _dev_state().items() if name not in PORT_VARIABLES_NAMES})
    os.environ["POWERTOOLS_LOG_LEVEL"] = os.environ.get("DEV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    template.use_layer()
    return endpoints
