"""`make dev`: the product on this machine, no Docker. Ctrl-C stops everything it started.

Ports: DYNAMODB_LOCAL_PORT (8000), MOTO_PORT (5000), LOCAL_API_PORT (3000), all on 127.0.0.1.
"""

import base64
import errno
import faulthandler
import json
import os
import shlex
import signal
import socket
import sys
import threading
import warnings

import boto3

from local import samples, template
from local.attach import DEV_STATE
from local.provision import CONSOLE_QUEUE
from local.schedules import clock_runner
from local.server import LocalApi
from local.stack import LocalStack
from local.streams import StreamPoller

EVENTS = template.ROOT / "events"
SHUTDOWN_SECONDS = 30
STREAM_FUNCTIONS = ("AccountProjectorFunction", "InstallationChangesFunction", "EntitlementEventsFunction")


def curl_line(api_url: str, event: dict) -> str:
    """The curl command that sends an HTTP API event's request to the local API."""
    if event["requestContext"]["http"]["method"] == "GET":
        return shlex.join(["curl", "-sS", f"{api_url}{event['rawPath']}"])
    body = event["body"]
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    body = " ".join(body.split("\n"))  # one line; JSON whitespace only sits between tokens
    parts = ["curl", "-sS", "-X", "POST", f"{api_url}{event['rawPath']}"]
    for name, value in event["headers"].items():
        if name not in ("host", "user-agent", "x-forwarded-proto"):  # the server sets what API Gateway would
            parts += ["-H", f"{name}: {value}"]
    parts += ["--data-binary", body]
    return shlex.join(parts)


# Pasted top to bottom, the sample events work: install, update, payment, the billing
# notifications, then the uninstall last (after it, the portal's events are refused).
FIRST, LAST = ("app_install", "app_update", "app_payment"), ("app_uninstall",)


def lifecycle_order(path) -> tuple[int, str]:
    if path.stem in FIRST:
        return (0, str(FIRST.index(path.stem)))
    return (2 if path.stem in LAST else 1, path.stem)


def print_alerts(stack: LocalStack, stopped: threading.Event) -> None:
    """Show each alert's text as it arrives on the stack's own queue (local-alerts is left alone)."""
    sqs = boto3.client("sqs", endpoint_url=stack.endpoints["AWS_ENDPOINT_URL_SQS"])
    url = stack.resources["queues"][CONSOLE_QUEUE]
    while not stopped.is_set():
        try:
            batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        except Exception:  # the stack is going down
            return
        for message in batch:
            envelope = json.loads(message["Body"])
            document = json.loads(envelope["Message"])
            indented = "\n    ".join(document["text"].splitlines())
            print(f"  ALERT {envelope.get('Subject', '')}\n    {indented}", flush=True)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


# (variable, default port, what listens there)
PORTS = (
    ("DYNAMODB_LOCAL_PORT", 8000, "DynamoDB Local"),
    ("MOTO_PORT", 5000, "moto server"),
    ("LOCAL_API_PORT", 3000, "the HTTP API"),
    ("FAKE_BITRIX24_PORT", 7000, "the fake Bitrix24"),
)


def taken_ports() -> list[str]:
    """One line per port another program holds: which port, for what, and the variable that moves it."""
    lines = []
    for variable, default, what in PORTS:
        port = int(os.environ.get(variable) or default)
        with socket.socket() as sock:
            # As the servers bind: a port whose last connections linger in TIME_WAIT (a make dev
            # stopped a moment ago) is free to them, so it is free here too.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                lines.append(
                    f"make dev: port {port} ({what}) is taken: stop what holds it, or choose another "
                    f"with {variable}=<port> make dev"
                )
    return lines


def main() -> None:
    if taken := taken_ports():
        print("\n".join(taken), file=sys.stderr)
        raise SystemExit(1)
    stack = LocalStack(
        *(int(os.environ.get(variable) or default) for variable, default, _ in PORTS if variable != "LOCAL_API_PORT")
    )
    print("Starting DynamoDB Local and moto server ...", flush=True)
    stack.start()
    try:
        stack.export_to_process()
        stack.keep_sample_tokens()
        DEV_STATE.parent.mkdir(exist_ok=True)
        DEV_STATE.write_text(
            json.dumps(
                {
                    **stack.bitrix24.environment,
                    "DYNAMODB_LOCAL_PORT": str(stack.dynamodb.port),
                    "MOTO_PORT": str(stack.moto.port),
                }
            )
        )
        # One console line per delivery; DEV_LOG_LEVEL=INFO shows the handlers' JSON logs and metrics.
        os.environ["POWERTOOLS_LOG_LEVEL"] = os.environ.get("DEV_LOG_LEVEL", "ERROR")
        os.environ["BITRIX24_REST_LOG_LEVEL"] = os.environ["POWERTOOLS_LOG_LEVEL"]  # the Bitrix24 request lines too
        # Powertools warns of an empty metric set on every flush, metrics disabled or not: not for a person.
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", str(os.environ["POWERTOOLS_LOG_LEVEL"] != "INFO").lower())
        # Each stream the template declares, polled as Lambda would: the account view, the
        # entitlements an installation moves, and the events each change tells.
        # The sample portal's first check before the streams are read (from their start): its
        # entitlement is then decided once, from the checked licence. The other way round it was
        # a race: the install's stale licence decided first (not entitled, then paid: two events).
        stack.check_sample_licence()
        pollers = [StreamPoller(name, stack.endpoints, log=print).start() for name in STREAM_FUNCTIONS]
        api = LocalApi(int(os.environ.get("LOCAL_API_PORT", 3000))).start()
        # The stack's test clock: POST /_clock on the fake's port moves it and runs what falls due.
        stack.bitrix24.deliver_to = api.url
        stack.bitrix24.clock_answer = clock_runner(stack.clock, stack.bitrix24, pollers).answer
        tables = ", ".join(template.resources("AWS::DynamoDB::Table"))
        print(f"\nDynamoDB Local  {stack.dynamodb.url}   (tables {tables})")
        print(
            f"moto server     {stack.moto.url}   (SNS AlertsTopic, SQS local-alerts and local-events: "
            "`make alerts`, `make events`; secrets)"
        )
        print(
            f"fake Bitrix24   http://127.0.0.1:{stack.bitrix24.port}   (HTTPS proxy answering every portal's "
            f"app.info, event.get, event.bind, batch; sample portal {samples.PORTAL_DOMAIN} pre-installed;\n"
            f"                play Bitrix24: curl -sS -X PUT http://127.0.0.1:{stack.bitrix24.port}/_portals/"
            f'{samples.PORTAL_DOMAIN} -d \'{{"STATUS": "P", "PAYMENT_EXPIRED": "Y", "DAYS": -3}}\')'
        )
        print(
            f"test clock      http://127.0.0.1:{stack.bitrix24.port}/_clock   (GET: now; POST "
            '{"advance_seconds": N} moves it and runs the schedules due meanwhile; docs/development.md)'
        )
        print(f"HTTP API        {api.url}   (OpenAPI document: {api.url}/openapi.json)\n")
        for route in template.routes() + template.read_routes():
            print(f"  {route.method:4} {api.url}{route.path}  ->  {route.function}")
        print("  NotificationsTable's stream -> AccountProjectorFunction -> AccountsTable (the account view)")
        print("  InstallationsTable's stream -> InstallationChangesFunction -> EntitlementsTable (GET /entitlements)")
        print(
            "  EntitlementsTable's stream -> EntitlementEventsFunction -> BillingEventsBus "
            "(`make events` for what it told)"
        )
        print("\nThe sample events, one curl line each:\n")
        for path in sorted(EVENTS.glob("*.json"), key=lifecycle_order):
            event = json.loads(path.read_text())
            if "rawPath" in event:  # not the stream event (events/account_projector.json)
                print(curl_line(api.url, event), "\n")
        print("A delivery answered 503 (or 502 for a bind) is parked on RescueQueue; `make replay` runs it again;")
        print("an alert left pending (its first attempt stalled) goes out with `make redrive-alerts`.\n")
        print("Try these first, in another terminal:")
        print("  1. Post an unpaid invoice:")
        print(f"     {curl_line(api.url, json.loads((EVENTS / 'unpaid_invoice.json').read_text()))}")
        print("  2. See its record (and every other):   make records")
        print("  3. See its alert: it prints here as ALERT within a second; `make alerts` reads the local-alerts queue")
        print("  4. See where account 504 stands now (the read API, unsigned here, AWS_IAM in AWS):")
        print(f"     curl -sS {api.url}/accounts/504")
        print(f"     curl -sS '{api.url}/accounts/504/notifications?type=UnPaidInvoice'")
        print("     .venv/bin/billing-webhooks --local accounts show 504\n")
        print("Serving; Ctrl-C stops everything.\n", flush=True)
        stopped = threading.Event()
        threading.Thread(target=print_alerts, args=(stack, stopped), daemon=True).start()
        # SIGTERM as Ctrl-C: a KeyboardInterrupt in the main thread. Setting the Event from the handler
        # could deadlock on the very lock the interrupted wait() holds, and make dev would never stop.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            # Awake once a second: a SIGTERM the kernel hands to another of our threads only sets
            # Python's flag, and a main thread blocked in a wait with no timeout never runs its
            # handler (CI saw make dev ignore SIGTERM for a minute).
            while not stopped.wait(1):
                pass
        except KeyboardInterrupt:
            pass
        stopped.set()
        # A shutdown stuck past this long prints every thread's stack and ends: Ctrl-C always stops.
        faulthandler.dump_traceback_later(SHUTDOWN_SECONDS, exit=True)
        for poller in pollers:  # all told at once, then waited for
            poller.stopped.set()
        for poller in pollers:
            poller.stop()
        api.stop()
    finally:
        DEV_STATE.unlink(missing_ok=True)
        stack.stop()
        print("\nStopped.")


def run() -> None:
    """`make dev`: a port another program takes between the check and the bind (a race the check
    cannot close) is said in one line, as a taken port is, never as a traceback."""
    try:
        main()
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        print(
            f"make dev: a port was taken while make dev started ({error.strerror}): run it again, "
            "or choose other ports (DYNAMODB_LOCAL_PORT, MOTO_PORT, LOCAL_API_PORT, FAKE_BITRIX24_PORT)",
            file=sys.stderr,
        )
        raise SystemExit(1) from None


if __name__ == "__main__":
    run()
