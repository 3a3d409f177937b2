"""`make bench`: cold start, warm cost, AWS calls, memory and sizes of the built functions, each
beside a floor measured in the same run on the same DynamoDB Local.

    .venv/bin/python -m bench.run    # BENCH_RUNS (11), BENCH_DELIVERIES (500), BENCH_FUNCTIONS (all)

Builds x86_64 (this machine cannot load arm64 wheels) with `sam build`, compiles it as `make build`
ships it, and runs every process on a bare Python 3.13 (-S -B) with Lambda's PYTHONPATH order and
the runtime's boto3. Prints a Markdown table (docs/performance.md carries its output).
"""

import base64
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from local import provision, samples, seeds, template
from local.stack import LocalStack
from local.template import ROOT
from tools import shipping

HERE = Path(__file__).resolve().parent
RUNS = int(os.environ.get("BENCH_RUNS", 11))
DELIVERIES = int(os.environ.get("BENCH_DELIVERIES", 500))
GOALS = {"cold": 1.10, "warm": 1.15, "layer_mb": 15.0, "projector": 1.15, "reads": 1.15}
VIEW_ROUNDS = int(os.environ.get("BENCH_VIEW_ROUNDS", 41))
PLAIN_BILLING_CALLS, ALERT_CALLS = 1, 3


def build(out: Path, environment: dict[str, str]) -> None:
    sam = os.environ.get("SAM_CLI", str(ROOT / ".venv-sam" / "bin" / "sam"))
    env = {"AWS_DEFAULT_REGION": "us-east-1", **environment, "SAM_CLI_TELEMETRY": "0"}
    result = subprocess.run(
        [sam, "build", "--parameter-overrides", "Architecture=x86_64", "--build-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    if result.returncode != 0:
        raise SystemExit(f"sam build failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    shipping.compile_build(out)


def read_only_copy(build_dir: Path, into: Path) -> Path:
    copy = Path(shutil.copytree(build_dir, into / "build"))
    for path in [copy, *copy.rglob("*")]:
        path.chmod(path.stat().st_mode & 0o555)
    return copy


def zipped_mb(directory: Path) -> float:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory))
    return len(buffer.getvalue()) / 1e6


def run_json(script: str, args: list[str], env: dict[str, str]) -> dict:
    result = subprocess.run(
        [sys.executable, "-S", "-B", str(HERE / script), *args], env=env, capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        raise SystemExit(f"{script} {args} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def distinct(event: dict, index: int) -> dict:
    """The same delivery under another key: billing gets another id, Bitrix24 another ts."""
    event = json.loads(json.dumps(event))
    if event["isBase64Encoded"]:  # a Bitrix24 form
        pairs = [
            (k, str(int(v) + index) if k == "ts" else v)
            for k, v in parse_qsl(base64.b64decode(event["body"]).decode(), keep_blank_values=True)
        ]
        event["body"] = base64.b64encode(urlencode(pairs).encode()).decode()
    else:
        event["body"] = re.sub(r'("id"\s*:\s*")([^"]+)"', rf'\g<1>\g<2>-{index}"', event["body"], count=1)
    return event


class Bench:
    def __init__(self, stack: LocalStack, build_dir: Path, runtime: Path, scratch: Path) -> None:
        self.stack, self.build_dir, self.runtime, self.scratch = stack, build_dir, runtime, scratch
        import boto3

        self.dynamodb = boto3.client(
            "dynamodb",
            endpoint_url=stack.endpoints["AWS_ENDPOINT_URL_DYNAMODB"],
            region_name="us-east-1",
            aws_access_key_id=stack.endpoints["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=stack.endpoints["AWS_SECRET_ACCESS_KEY"],
        )

    def env(self, function: str) -> dict[str, str]:
        return {
            "PATH": os.environ["PATH"],
            **self.stack.environment,
            "PYTHONPATH": shipping.lambda_pythonpath(self.build_dir, function, self.runtime),
        }

    def reset(self) -> None:
        """Empty tables, the sample portal installed: every run meets the same state."""
        for name, key in (
            ("NotificationsTable", ("notification_id", "notification_type")),
            ("InstallationsTable", ("member_id",)),
        ):
            for page in self.dynamodb.get_paginator("scan").paginate(TableName=name):
                for item in page["Items"]:
                    self.dynamodb.delete_item(TableName=name, Key={k: item[k] for k in key})
        provision.install_sample_portal(self.dynamodb)
        self.stack.reset_portals()

    def warm_up_dynamodb_local(self) -> None:
        for index in range(300):  # the JVM compiles its hot paths first
            self.dynamodb.put_item(
                TableName="NotificationsTable",
                Item={"notification_id": {"S": f"warm-up-{index}"}, "notification_type": {"S": "x"}},
            )

    def cold(self, route: template.Route) -> dict:
        event_file = str(ROOT / "events" / f"{route.code_dir.name}.json")
        runs, floors = [], []
        self.reset()
        calls = self.scratch / f"{route.function}-calls.json"  # what the floor must call too
        calls.write_text(json.dumps(run_json("record.py", [route.function, event_file], self.env(route.function))))
        for _ in range(RUNS):
            self.reset()
            runs.append(run_json("cold.py", [route.function, event_file], self.env(route.function)))
            floors.append(run_json("floor.py", [event_file, str(calls)], self.env(route.function)))
        assert all(run["status"] == 200 for run in runs), runs
        median = lambda rows, key: statistics.median(row[key] for row in rows)  # noqa: E731
        # Each run and its floor are taken back to back: the median of their ratios cancels the
        # machine's drift between runs better than a ratio of two medians.
        ratios = [run["cold_ms"] / floor["cold_ms"] for run, floor in zip(runs, floors, strict=False)]
        return {
            "cold_ms": median(runs, "cold_ms"),
            "init_ms": median(runs, "init_ms"),
            "floor_ms": median(floors, "cold_ms"),
            "cold_ratio": statistics.median(ratios),
            "peak_rss_mb": median(runs, "peak_rss_mb"),
            "floor_rss_mb": median(floors, "peak_rss_mb"),
        }

    def view(self) -> dict:
        """The projector per stream record against raw UpdateItems, GET /accounts against the raw Queries it makes."""
        projector, reader = "AccountProjectorFunction", "AccountsApiFunction"
        batches = {
            "warmup": stream_event(account_records(990000)),
            "rounds": [
                [stream_event(account_records(990001 + index)), f"billing#{995001 + index}"]
                for index in range(VIEW_ROUNDS)
            ],
        }
        batches_file = self.scratch / "projector.json"
        batches_file.write_text(json.dumps(batches))
        projected = run_json("projector.py", [projector, str(batches_file)], self.env(projector))
        from local.server import http_api_event

        route = next(route for route in template.read_routes() if route.path == "/accounts/{account_id}")
        event = http_api_event(
            "GET",
            "/accounts/990001",
            "",
            {"host": "bench"},
            b"",
            route_key=route.route_key,
            path_parameters={"account_id": "990001"},
        )
        reads_file = self.scratch / "reads.json"
        reads_file.write_text(json.dumps({"event": event, "table": "AccountsTable", "account_key": "billing#990001"}))
        read = run_json("reads.py", [reader, str(reads_file)], self.env(reader))
        entitled = self.entitlement_reads(reader)
        return {
            "entitlement_ms": statistics.median(entitled["times_ms"]),
            "get_item_ms": statistics.median(entitled["floor_ms"]),
            "projector_ms": statistics.median(projected["times_ms"]),
            "projector_floor_ms": statistics.median(projected["floor_ms"]),
            "updates_per_record": statistics.median(projected["updates_per_record"]),
            "records_per_batch": len(batches["warmup"]["Records"]),
            "get_ms": statistics.median(read["times_ms"]),
            "query_ms": statistics.median(read["floor_ms"]),
        }

    def entitlement_reads(self, reader: str) -> dict:
        """GET /entitlements/{member_id} of a kept entitlement against a raw GetItem of its item."""
        from billing_webhooks.data.toolkit import to_item
        from billing_webhooks.domain.entitlements import decide
        from local.server import http_api_event

        member_id = samples.PORTAL_MEMBER_ID
        answer = decide(
            member_id,
            {"status": "installed", "vouched": True, "licence_status": "F", "licence_ts": int(time.time())},
            None,
            datetime.now(UTC),
            timedelta(days=3),
        )
        self.dynamodb.put_item(
            TableName="EntitlementsTable",
            Item=to_item(
                {"member_id": member_id, "entitlement": answer, "entitlement_digest": "bench", "entitlement_version": 1}
            ),
        )
        route = next(route for route in template.read_routes() if route.path == "/entitlements/{member_id}")
        event = http_api_event(
            "GET",
            f"/entitlements/{member_id}",
            "",
            {"host": "bench"},
            b"",
            route_key=route.route_key,
            path_parameters={"member_id": member_id},
        )
        reads_file = self.scratch / "entitlement-reads.json"
        reads_file.write_text(
            json.dumps({"event": event, "floor": "get_item", "table": "EntitlementsTable", "member_id": member_id})
        )
        return run_json("reads.py", [reader, str(reads_file)], self.env(reader))

    def warm(self, route: template.Route) -> dict:
        self.reset()
        event = json.loads((ROOT / "events" / f"{route.code_dir.name}.json").read_text())
        events = {"warmup": event, "deliveries": [distinct(event, index) for index in range(1, DELIVERIES + 2)]}
        events_file = self.scratch / f"{route.function}-warm.json"
        events_file.write_text(json.dumps(events))
        result = run_json("warm.py", [route.function, str(events_file)], self.env(route.function))
        return {
            "warm_ms": statistics.median(result["times_ms"]),
            "warm_floor_ms": statistics.median(result["floor_ms"]),
            "first_calls": result["first_calls"],
            "duplicate_calls": result["duplicate_calls"],
        }


def account_records(account_id: int) -> list[dict]:
    """32 stored billing records of one account: each seed type 4 times, its ids and dates varied."""
    template.use_layer()
    from billing_webhooks.data.notifications import build_record
    from billing_webhooks.models import billing

    records = []
    for kind, seed in sorted(seeds.billing_seeds().items()):
        for number in range(4):
            body = json.loads(json.dumps(seed, default=str))
            when = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=number, hours=len(records))
            body.update(
                id=f"{kind}-{account_id}-{number}",
                account_id=account_id,
                original_event_date=when.strftime("%Y-%m-%d %H:%M:%S"),
            )
            details = body["details"]
            if "invoice_id" in details:
                details["invoice_id"] = [100 + number] if isinstance(details["invoice_id"], list) else 100 + number
            if "sold_product_id" in details:
                details["sold_product_id"] = 700 + number
            records.append(build_record(getattr(billing, kind).model_validate(body), when))
    return records


def stream_event(records: list[dict]) -> dict:
    """The batch Lambda hands the projector for these new records."""
    from billing_webhooks.data.toolkit import to_item

    return {
        "Records": [
            {
                "eventID": str(number),
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "eventSourceARN": "arn:bench",
                "dynamodb": {
                    "NewImage": to_item(record),
                    "SequenceNumber": str(10**20 + number),
                    "StreamViewType": "NEW_IMAGE",
                    "SizeBytes": 1,
                },
            }
            for number, record in enumerate(records)
        ]
    }


def mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def main() -> None:
    started = time.monotonic()
    only = set(filter(None, os.environ.get("BENCH_FUNCTIONS", "").split(",")))
    routes = [route for route in template.routes() if not only or route.function in only]
    host_env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch_name:
        scratch = Path(scratch_name)
        print(f"building x86_64 into {scratch} ...", file=sys.stderr, flush=True)
        build(scratch / "sam", host_env)
        build_dir = read_only_copy(scratch / "sam", scratch)
        runtime = shipping.lambda_runtime_boto3(host_env)
        rows = {}
        with LocalStack() as stack:
            bench = Bench(stack, build_dir, runtime, scratch)
            bench.warm_up_dynamodb_local()
            for route in routes:
                print(f"measuring {route.function} ...", file=sys.stderr, flush=True)
                rows[route.function] = {**bench.cold(route), **bench.warm(route)}
            print("measuring the account view ...", file=sys.stderr, flush=True)
            view = bench.view()
        layer_mb = zipped_mb(build_dir / "SharedLayer")
        sizes = {route.function: zipped_mb(build_dir / route.function) * 1000 for route in routes}
        for path in [build_dir, *build_dir.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)  # let the scratch directory go
    report(rows, layer_mb, sizes, [route for route in routes], view)
    print(f"\nmake bench took {time.monotonic() - started:.0f} s (the x86_64 build included).")


def report(rows: dict, layer_mb: float, sizes: dict, routes: list, view: dict) -> None:
    alert_functions = {"UnPaidInvoiceFunction", "TrialReminderFunction"}
    print(
        f"\n{RUNS} cold starts and {DELIVERIES} warm deliveries per function; Python "
        f"{sys.version.split()[0]}, x86_64, DynamoDB Local + moto on 127.0.0.1.\n"
    )
    print(
        "| function | cold ms | floor ms | × floor (paired) | init ms | peak MB (floor) | warm ms | floor ms | × floor "
        "| AWS calls new / dup | zip KB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    failures = []
    for route in routes:
        row = rows[route.function]
        cold_ratio, warm_ratio = row["cold_ratio"], row["warm_ms"] / row["warm_floor_ms"]
        first, duplicate = len(row["first_calls"]), len(row["duplicate_calls"])
        is_billing = route.path.startswith("/billing/")
        calls_goal = ALERT_CALLS if route.function in alert_functions else PLAIN_BILLING_CALLS
        checks = {"cold": cold_ratio <= GOALS["cold"]}
        if is_billing:  # the warm and AWS-call goals are set for billing deliveries
            checks["calls"] = first <= calls_goal and duplicate <= calls_goal
            if route.function not in alert_functions:
                checks["warm"] = warm_ratio <= GOALS["warm"]
        failures += [f"{route.function}: {name}" for name, ok in checks.items() if not ok]
        warm_mark = f" {mark(checks['warm'])}" if "warm" in checks else ""
        calls_mark = f" {mark(checks['calls'])}" if "calls" in checks else ""
        print(
            f"| {route.function.removesuffix('Function')} | {row['cold_ms']:.0f} | {row['floor_ms']:.0f} "
            f"| {cold_ratio:.2f} {mark(checks['cold'])} | {row['init_ms']:.0f} "
            f"| {row['peak_rss_mb']:.0f} ({row['floor_rss_mb']:.0f}) | {row['warm_ms']:.2f} "
            f"| {row['warm_floor_ms']:.2f} | {warm_ratio:.2f}{warm_mark} | {first} / {duplicate}{calls_mark} "
            f"| {sizes[route.function]:.1f} |"
        )
    layer_ok = layer_mb <= GOALS["layer_mb"]
    failures += [] if layer_ok else ["layer size"]
    print(
        f"\nSharedLayer: {layer_mb:.2f} MB zipped {mark(layer_ok)} (goal ≤ {GOALS['layer_mb']:.0f} MB; boto3 not bundled)"
    )
    print(
        "AWS calls (warm, secrets cached): "
        + "; ".join(
            f"{route.function.removesuffix('Function')}: {', '.join(rows[route.function]['first_calls'])} / "
            f"{', '.join(rows[route.function]['duplicate_calls'])}"
            for route in routes
            if route.function in alert_functions or route.path.startswith("/bitrix24/")
        )
    )
    projector_ratio = view["projector_ms"] / view["projector_floor_ms"]
    reads_ratio = view["get_ms"] / view["query_ms"]
    entitlement_ratio = view["entitlement_ms"] / view["get_item_ms"]
    checks = {
        "projector": projector_ratio <= GOALS["projector"],
        "reads": reads_ratio <= GOALS["reads"],
        "entitlement": entitlement_ratio <= GOALS["reads"],
    }
    failures += [f"account view: {name}" for name, ok in checks.items() if not ok]
    print(
        f"\nThe account view ({VIEW_ROUNDS} rounds, warm; a batch is one account's {view['records_per_batch']} new records):\n"
    )
    print("| what | ms | floor | floor ms | × floor |")
    print("|---|---:|---|---:|---:|")
    print(
        f"| projector, per stream record | {view['projector_ms']:.2f} | raw conditional UpdateItem per touched part "
        f"({view['updates_per_record']:.2f} per record) | {view['projector_floor_ms']:.2f} "
        f"| {projector_ratio:.2f} {mark(checks['projector'])} |"
    )
    print(
        f"| GET /accounts/{{id}} ({view['records_per_batch']} notifications' parts) | {view['get_ms']:.2f} "
        f"| the raw Queries it makes (singles, 3 list pages, 3 counts, open invoices) | {view['query_ms']:.2f} | {reads_ratio:.2f} {mark(checks['reads'])} |"
    )
    print(
        f"| GET /entitlements/{{member_id}} | {view['entitlement_ms']:.2f} | a raw GetItem of the same item "
        f"| {view['get_item_ms']:.2f} | {entitlement_ratio:.2f} {mark(checks['entitlement'])} |"
    )
    print(
        f"\nGoals: cold ≤ {GOALS['cold']}× floor (every function), warm ≤ {GOALS['warm']}× raw PutItem and "
        f"{PLAIN_BILLING_CALLS} AWS call (plain billing), ≤ {ALERT_CALLS} calls (alerts); the projector and "
        f"GET /accounts ≤ {GOALS['projector']}× their floors. Cold floors make the calls their function made."
    )
    print("Missed: " + ", ".join(failures) if failures else "All goals met.")


if __name__ == "__main__":
    main()
