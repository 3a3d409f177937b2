"""The local HTTP API: template.yaml's routes, served through the same handlers with the same
HTTP API payload 2.0 event that API Gateway sends. Loopback only."""

import base64
import functools
import importlib.util
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, unquote

from local import signatures, template

# API Gateway passes these through as text; any other body arrives base64-encoded (forms included).
_TEXT_MEDIA_TYPES = ("application/json", "text/")


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = ""
    log_group_name: str = ""
    log_stream_name: str = ""
    function_version: str = "$LATEST"
    timeout_seconds: float = 10.0  # the function's Timeout (template.function_timeout), from the invocation

    def __post_init__(self) -> None:
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def http_api_event(
    method: str,
    path: str,
    raw_query: str,
    headers: dict[str, str],
    body: bytes,
    source_ip: str = "127.0.0.1",
    route_key: str | None = None,
    path_parameters: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API payload 2.0 event, as API Gateway builds it."""
    route_key = route_key or f"{method} {path}"
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
    # As API Gateway does (there "https"): the scheme the caller used, which a handler reads to
    # tell its own URL (bindings.handler_urls).
    lowered["x-forwarded-proto"] = "http"
    content_type = lowered.get("content-type", "")
    is_text = not body or content_type.startswith(_TEXT_MEDIA_TYPES)
    query: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": lowered,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": lowered.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "body": body.decode("utf-8", "replace") if is_text else base64.b64encode(body).decode(),
        "isBase64Encoded": not is_text,
    }
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    return event


def _pattern(route_path: str) -> re.Pattern[str]:
    """/accounts/{account_id} as a regular expression with one group per path parameter."""
    parts = re.split(r"\{(\w+)\}", route_path)
    regex = "".join(re.escape(part) if index % 2 == 0 else f"(?P<{part}>[^/]+)" for index, part in enumerate(parts))
    return re.compile(regex + "$")


class PerThreadMetrics:
    """Powertools Metrics keeps a container's metrics in state shared by every Metrics object:
    right in Lambda (one event at a time), wrong here, where deliveries to different functions
    run side by side on threads of one process. This provider gives each thread its own set,
    flushed by the handler that thread runs."""

    def __init__(self, make_provider: Callable[[], Any]) -> None:
        self._make_provider = make_provider
        self._local = threading.local()

    def current(self) -> Any:
        provider = getattr(self._local, "provider", None)
        if provider is None:
            provider = self._local.provider = self._make_provider()
        return provider

    def __getattr__(self, name: str) -> Any:  # add_metric, add_dimension, flush_metrics, ...
        return getattr(self.current(), name)

    def log_metrics(self, lambda_handler: Callable | None = None, **options: Any) -> Any:
        if lambda_handler is None:
            return functools.partial(self.log_metrics, **options)

        @functools.wraps(lambda_handler)
        def flushed_per_thread(*args: Any, **kwargs: Any) -> Any:
            return self.current().log_metrics(lambda_handler, **options)(*args, **kwargs)

        return flushed_per_thread


def isolate_metrics_per_thread() -> None:
    """Before any handler module is loaded: their log_metrics decorators bind the provider."""
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

    from billing_webhooks.observability import metrics

    if not isinstance(metrics.provider, PerThreadMetrics):
        metrics.provider = PerThreadMetrics(AmazonCloudWatchEMFProvider)  # type: ignore[assignment]


class LocalFunction:
    """One function's handler, loaded from its CodeUri like Lambda does; one event at a time."""

    def __init__(self, route: template.Route) -> None:
        self.route = route
        template.use_layer()
        isolate_metrics_per_thread()
        module_name, _, attribute = route.handler.rpartition(".")
        module = _load_module(f"function_{route.function}", route.code_dir / f"{module_name}.py")
        self.handler: Callable[[dict, Any], dict] = getattr(module, attribute)
        self._lock = threading.Lock()  # a Lambda container runs one event at a time
        self.timeout = template.function_timeout(route.function)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return self.handler(event, LambdaContext(self.route.function, timeout_seconds=self.timeout))


def _load_module(name: str, path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} cannot be loaded as a module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def describe(response: dict[str, Any]) -> str:
    """A short summary of an answer for the console: outcome and key, or the problem's title."""
    try:
        body = json.loads(response.get("body") or "{}")
    except ValueError:
        return ""
    if "notification_id" in body:
        return f"{body['status']} {body['notification_id']}/{body['type']}"
    return body.get("title", "")


class _LoopbackServer(ThreadingHTTPServer):
    # Webhook senders open a fresh connection per delivery, many at once; the default listen
    # backlog of 5 resets the rest of a burst (ConnectionResetError), and a reset is a lost
    # delivery. Linux caps this at net.core.somaxconn (4096 on current kernels).
    request_queue_size = 1024
    daemon_threads = True


class LocalApi:
    def __init__(self, port: int, log: Callable[[str], None] | None = print) -> None:
        self.functions = {route.route_key: LocalFunction(route) for route in template.routes()}
        # The read API's routes carry path parameters and are AWS_IAM in AWS: here a signature, when
        # sent, is checked as API Gateway checks it (local/signatures.py); an unsigned read is served.
        readers: dict[str, LocalFunction] = {}
        self.read_routes = [
            (route, _pattern(route.path), readers.setdefault(route.function, LocalFunction(route)))
            for route in template.read_routes()
        ]
        self.log = log
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as two writes: with Nagle's algorithm a keep-alive client's
            # delayed ACK holds the body back 40 ms on every request.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                api.serve(self)

            do_GET = do_PUT = do_DELETE = do_PATCH = do_POST  # noqa: N815

            def log_message(self, *args: Any) -> None:  # one line per delivery is ours to print
                pass

        self.httpd = _LoopbackServer(("127.0.0.1", port), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread: threading.Thread | None = None

    def serve(self, request: BaseHTTPRequestHandler) -> None:
        started = time.perf_counter()
        path, _, raw_query = request.path.partition("?")
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        function = self.functions.get(f"{request.command} {path}")
        route_key, parameters = None, None
        for route, pattern, reader in self.read_routes:
            matched = pattern.match(unquote(path)) if request.command == route.method else None
            if matched:
                function, route_key, parameters = reader, route.route_key, matched.groupdict()
                break
        if (request.command, path) == ("GET", "/openapi.json"):  # local only: no such route in AWS
            response = {
                "statusCode": 200,
                "headers": {"Content-Type": "application/json"},
                "body": template.OPENAPI_DOCUMENT.read_text(),
            }
        elif function is None:
            response = {
                "statusCode": 404,
                "headers": {"Content-Type": "application/json"},
                "body": json.dumps({"message": "Not Found"}),
            }
        elif route_key and (
            refused := signatures.refusal(request.command, path, raw_query, dict(request.headers.items()))
        ):
            response = {  # as API Gateway refuses a read API request signed wrong (AWS_IAM)
                "statusCode": 403,
                "headers": {"Content-Type": "application/json"},
                "body": json.dumps({"message": refused}),
            }
        else:
            event = http_api_event(
                request.command,
                path,
                raw_query,
                dict(request.headers.items()),
                body,
                request.client_address[0],
                route_key,
                parameters,
            )
            try:
                response = function.invoke(event)
            except Exception as error:  # as API Gateway does when a function fails
                response = {
                    "statusCode": 500,
                    "headers": {"Content-Type": "application/json"},
                    "body": json.dumps({"message": "Internal Server Error"}),
                }
                if self.log:
                    self.log(f"  function {function.route.function} raised {error.__class__.__name__}")
        self._write(request, response)
        if self.log:
            elapsed = (time.perf_counter() - started) * 1000
            self.log(f"{request.command} {path} -> {response['statusCode']} {describe(response)} ({elapsed:.0f} ms)")

    @staticmethod
    def _write(request: BaseHTTPRequestHandler, response: dict[str, Any]) -> None:
        payload = response.get("body") or ""
        data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode()
        request.send_response(response.get("statusCode", 200))
        for name, value in (response.get("headers") or {}).items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def start(self) -> "LocalApi":
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="local-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
