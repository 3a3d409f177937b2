"""template.yaml as data: the routes, resources and environment the local stack mirrors."""

import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
LAYER = ROOT / "layers" / "shared"
# Written by `make openapi` (local/openapi.py), served by the local API (local/server.py).
OPENAPI_DOCUMENT = ROOT / "openapi.json"


def use_layer() -> None:
    """Make the layer's package importable here, as /opt/python is on Lambda."""
    if str(LAYER) not in sys.path:
        sys.path.insert(0, str(LAYER))


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short forms (!Ref X, !GetAtt A.B, !Sub ...) as their long forms."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


@cache
def load() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)  # noqa: S506 (SafeLoader subclass)


def parameter_default(name: str) -> str:
    """A template parameter's default, as a stack deployed with none given holds it."""
    return str(load()["Parameters"][name]["Default"])


def resources(kind: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in load()["Resources"].items() if res["Type"] == kind}


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str  # logical id
    code_dir: Path
    handler: str  # module.attribute

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


def _handler_default() -> str:
    return load().get("Globals", {}).get("Function", {}).get("Handler", "app.handler")


def routes() -> list[Route]:
    """The webhook routes (POST): one function each."""
    return [route for route in http_routes() if route.method == "POST"]


def read_routes() -> list[Route]:
    """The private read API's routes (GET, AWS_IAM in AWS; served unsigned by `make dev`)."""
    return [route for route in http_routes() if route.method == "GET"]


def function(name: str) -> Route:
    """A function that no route reaches (the projector, the replay): its code, as a Route without one."""
    props = load()["Resources"][name]["Properties"]
    return Route(
        method="",
        path="",
        function=name,
        code_dir=ROOT / props["CodeUri"],
        handler=props.get("Handler", _handler_default()),
    )


def function_timeout(name: str) -> int:
    """A function's Timeout in seconds: its own, else the Globals'."""
    own = load()["Resources"][name]["Properties"].get("Timeout")
    return int(own or load().get("Globals", {}).get("Function", {}).get("Timeout", 3))


def http_routes() -> list[Route]:
    handler_default = _handler_default()
    found = []
    for name, res in resources("AWS::Serverless::Function").items():
        props = res["Properties"]
        for event in props.get("Events", {}).values():
            if event["Type"] == "HttpApi":
                found.append(
                    Route(
                        method=event["Properties"]["Method"].upper(),
                        path=event["Properties"]["Path"],
                        function=name,
                        code_dir=ROOT / props["CodeUri"],
                        handler=props.get("Handler", handler_default),
                    )
                )
    return sorted(found, key=lambda route: route.path)


def global_environment(physical_ids: dict[str, str], parameters: dict[str, str] | None = None) -> dict[str, str]:
    """Globals' variables with each !Ref resolved to the local resource or parameter it names
    (a parameter's default unless `parameters` sets it)."""
    variables = load()["Globals"]["Function"]["Environment"]["Variables"]
    parameters = {name: spec.get("Default", "") for name, spec in load().get("Parameters", {}).items()} | (
        parameters or {}
    )
    env = {}
    for name, value in variables.items():
        if isinstance(value, dict) and "Ref" in value:
            ref = value["Ref"]
            value = physical_ids.get(ref, parameters.get(ref, ""))
        env[name] = str(value)
    return env
