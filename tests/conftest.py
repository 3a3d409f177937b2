import json
import os
import subprocess
from decimal import Decimal

import boto3
import pytest

from local import provision, template
from local.server import LambdaContext, LocalApi, LocalFunction
from local.stack import LocalStack

EVENTS = template.ROOT / "events"
# The environment this test run started with, for the tools it runs (sam, pip, checkov): the local
# stack later exports the handlers' environment into this process, fake Bitrix24 proxy included.
HOST_ENVIRONMENT = dict(os.environ)

# Powertools reads its settings when Logger/Metrics are created, which may be at collection time.
os.environ.update({k: v for k, v in template.global_environment({}).items() if k.startswith("POWERTOOLS_")})
# Every function gets the template's Globals; unit tests see them too (resources named as the local
# stack names them), and the stack fixture points them at the running services.
for _name, _value in template.global_environment(provision.physical_ids()).items():
    if not _name.startswith("AWS_ENDPOINT_URL_"):
        os.environ.setdefault(_name, _value)


def load_event(name: str) -> dict:
    return json.loads((EVENTS / f"{name}.json").read_text())


@pytest.fixture(autouse=True)
def settings_read_afresh():
    """Lambda reads its environment once per container; a test that changes it gets a fresh read."""
    from billing_webhooks.settings import settings

    settings.cache_clear()
    yield
    settings.cache_clear()


@pytest.fixture(scope="session")
def stack():
    """DynamoDB Local and moto server on free loopback ports, with the template's resources."""
    with LocalStack() as running:
        running.export_to_process()
        yield running


@pytest.fixture(scope="session")
def functions(stack) -> dict[str, LocalFunction]:
    """{function directory name: handler loaded from functions/<name>/app.py}."""
    return {route.code_dir.name: LocalFunction(route) for route in template.routes()}


@pytest.fixture(scope="session")
def api(stack):
    running = LocalApi(0, log=None).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def projector(stack):
    """AccountProjectorFunction on NotificationsTable's stream, as Lambda's poller runs it."""
    from local.streams import StreamPoller

    poller = StreamPoller("AccountProjectorFunction", stack.endpoints).start()
    yield poller
    poller.stop()


@pytest.fixture(scope="module")
def installation_stream(stack):
    """InstallationChangesFunction on InstallationsTable's stream, from now on (earlier modules'
    writes are theirs): an installation's move reaches its entitlement, as in AWS."""
    from local.streams import StreamPoller

    poller = StreamPoller("InstallationChangesFunction", stack.endpoints, starting_position="LATEST").start()
    assert poller.ready.wait(20)  # its place taken before the test writes
    yield poller
    poller.stop()


@pytest.fixture(scope="module")
def event_stream(stack):
    """EntitlementEventsFunction on EntitlementsTable's stream, from now on: each told change on
    BillingEventsBus (and so on make dev's local-events queue)."""
    from local.streams import StreamPoller

    poller = StreamPoller("EntitlementEventsFunction", stack.endpoints, starting_position="LATEST").start()
    assert poller.ready.wait(20)
    yield poller
    poller.stop()


@pytest.fixture(scope="session")
def dynamodb(stack):
    return boto3.client("dynamodb", endpoint_url=stack.endpoints["AWS_ENDPOINT_URL_DYNAMODB"])


class Table:
    def __init__(self, dynamodb, name: str, key: tuple[str, ...]) -> None:
        self.dynamodb, self.name, self.key = dynamodb, name, key

    def items(self) -> list[dict]:
        from boto3.dynamodb.types import TypeDeserializer

        pages = self.dynamodb.get_paginator("scan").paginate(TableName=self.name, ConsistentRead=True)
        deserialize = TypeDeserializer().deserialize
        return [{k: deserialize(v) for k, v in item.items()} for page in pages for item in page["Items"]]

    def get(self, **key: str) -> dict | None:
        return next((item for item in self.items() if all(item.get(k) == v for k, v in key.items())), None)

    def clear(self) -> None:
        for item in self.items():
            self.dynamodb.delete_item(TableName=self.name, Key={k: {"S": item[k]} for k in self.key})


@pytest.fixture
def installations(stack, dynamodb) -> Table:
    """The InstallationsTable holding only the sample portal, installed; the fake Bitrix24 knows
    only that portal."""
    table = Table(dynamodb, "InstallationsTable", ("member_id",))
    table.clear()
    provision.install_sample_portal(dynamodb)
    stack.reset_portals()
    return table


@pytest.fixture
def table(stack, dynamodb, installations) -> Table:
    """The NotificationsTable, emptied before the test (and the installations reset)."""
    table = Table(dynamodb, "NotificationsTable", ("notification_id", "notification_type"))
    table.clear()
    return table


def invoke(function: LocalFunction, event: dict) -> tuple[int, dict, dict]:
    """Call a handler as Lambda would; return (status, headers, JSON body)."""
    response = function.handler(event, LambdaContext(function.route.function))
    return response["statusCode"], response["headers"], json.loads(response["body"], parse_float=Decimal)


def run_into_a_closed_pipe(argv: list[str], environment: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`argv` run from the project's root with its stdout a pipe whose reader has gone (as under
    `| head -1` once head has its line): what it says on stderr, and how it ends."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        return subprocess.run(
            argv,
            cwd=template.ROOT,
            env=environment,
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(writer)
