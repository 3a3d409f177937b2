"""`make bench-sync`: the licence sync at scale, on a local stack of its own.

    .venv/bin/python -m bench.sync    # BENCH_SYNC_PORTALS (10000), BENCH_SYNC_LATENCY_MS (50), BENCH_SYNC_FAIL_RATE (0.02)

Installs that many portals (their records and their kept tokens, every access token expired so
each needs a refresh), each answering app.info with a licence of its own through the fake
Bitrix24 (that latency, that share of requests failing). Then runs LicenceSyncRunFunction's run
(jobs/licence_sync_run.py) in this process as its schedule would, again "5 minutes later" and so
on while portals are due after failures, with the streams the checks feed polled as Lambda
would (InstallationsTable's to InstallationChangesFunction, EntitlementsTable's to
EntitlementEventsFunction), so every AWS call a check causes is counted. Prints portals per
second, AWS calls per portal, the refreshes per portal per run (never 2), the rate Bitrix24
would refuse, and whether every licence is what its portal says afterwards.
"""

import os
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from local import samples
from local.fake_bitrix24 import Portal
from local.stack import LocalStack

PORTALS = int(os.environ.get("BENCH_SYNC_PORTALS", 10_000))
LATENCY_MS = float(os.environ.get("BENCH_SYNC_LATENCY_MS", 50))
FAIL_RATE = float(os.environ.get("BENCH_SYNC_FAIL_RATE", 0.02))
BACKOFF_SECONDS = 5 * 60 + 1  # the first retry after a failure (domain/schedule.py)
MAX_RUNS = 8


def portal_licence(index: int) -> dict:
    """What portal `index` answers app.info: a spread of paid, ending, ended and trial licences."""
    days = index % 60 - 10
    return {"status": "T" if index % 7 == 0 else "P", "days": days, "payment_expired": "Y" if days <= 0 else "N"}


def install(stack: LocalStack, index: int, now: int) -> None:
    from billing_webhooks.data.toolkit import to_item
    from billing_webhooks.domain import portal_tokens, schedule

    domain, member_id = f"p{index}.bitrix24.com", f"{index:032x}"
    fake = Portal(
        f"access-{index}",
        samples.APP_CODE,
        member_id=member_id,
        refresh_token=f"refresh-{index}",
        license="en_project",
        latency_ms=LATENCY_MS,
        fail_rate=FAIL_RATE,
        **portal_licence(index),
    )
    stack.bitrix24.portals[domain] = fake
    record = {
        "member_id": member_id,
        "domain": domain,
        "client_endpoint": f"https://{domain}/rest/",
        "server_endpoint": "https://oauth.bitrix.info/rest/",
        "status": "installed",
        "vouched": True,
        "lifecycle_ts": now - 86400,
        "licence_ts": now - 86400,
        "licence_status": "P",
        "days": 30,
        "licence_source": "app.info",
        "sync_shard": schedule.sync_shard(member_id),
        "next_check_at": now,
    }
    stack_dynamodb().put_item(TableName="InstallationsTable", Item=to_item(record))
    # Kept an hour ago: every access token has expired, so each portal's check refreshes it first.
    answer = {"access_token": fake.access_token, "refresh_token": fake.refresh_token, "expires_in": 0}
    assert portal_tokens.keep_issued(member_id, answer, record["server_endpoint"], now=now - 3600)


_clients: list = []


def stack_dynamodb():
    if not _clients:
        from billing_webhooks.data import aws

        _clients.append(aws.client("dynamodb"))
    return _clients[0]


# The stream pollers' own reads are Lambda's, free of charge: not the product's calls.
POLLING = ("dynamodbstreams.", "dynamodb.DescribeTable")


def count_aws_calls() -> Counter:
    import boto3

    calls: Counter = Counter()
    boto3.DEFAULT_SESSION or boto3.setup_default_session()

    def counted(model, **_) -> None:
        name = f"{model.service_model.service_name}.{model.name}"
        if not name.startswith(POLLING):
            calls.update([name])

    boto3.DEFAULT_SESSION.events.register("before-call", counted)
    return calls


def settled(calls: Counter, quiet_seconds: float = 5) -> None:
    """Until the streams' functions have done what the checks set off (no call for a while)."""
    last, quiet_since = -1, time.monotonic()
    while time.monotonic() - quiet_since < quiet_seconds:
        time.sleep(0.5)
        total = sum(calls.values())
        if total != last:
            last, quiet_since = total, time.monotonic()


def main() -> None:
    random.seed(7)
    with LocalStack() as stack:
        stack.export_to_process()
        os.environ.update({"POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"})
        from billing_webhooks.jobs.licence_sync_run import run_due
        from billing_webhooks.observability import metrics

        metrics.add_metric = lambda **_: None  # a run's metrics are Lambda's to ship: not printed here

        calls = count_aws_calls()
        now = int(time.time())
        started = time.perf_counter()
        with ThreadPoolExecutor(32) as pool:
            list(pool.map(lambda index: install(stack, index, now), range(PORTALS)))
        print(f"{PORTALS} portals installed with kept tokens in {time.perf_counter() - started:.1f} s")
        from local.streams import StreamPoller

        pollers = [
            StreamPoller(name, stack.endpoints, starting_position="LATEST").start()
            for name in ("InstallationChangesFunction", "EntitlementEventsFunction")
        ]
        for poller in pollers:
            poller.ready.wait(30)
        settled(calls)
        calls.clear()
        fakes = [portal for domain, portal in stack.bitrix24.portals.items() if domain != samples.PORTAL_DOMAIN]
        runs, clock, twice = [], now, 0
        for run in range(MAX_RUNS):
            before = [portal.calls.get("refresh", 0) for portal in fakes]
            started = time.perf_counter()
            outcomes = run_due(lambda: 10**9, now=clock)
            elapsed = time.perf_counter() - started
            twice += sum(portal.calls.get("refresh", 0) - was > 1 for portal, was in zip(fakes, before, strict=False))
            if not outcomes:
                break
            runs.append((clock - now, elapsed, outcomes))
            print(f"run {run + 1} (at +{clock - now} s): {elapsed:.1f} s, {dict(outcomes)}", flush=True)
            clock += BACKOFF_SECONDS * 2**run  # when the failed ones are due again
        settled(calls)
        for poller in pollers:
            poller.stop()
        checked = sum(outcomes.get("ok", 0) for _, _, outcomes in runs)
        first_elapsed, first = runs[0][1], runs[0][2]
        wrong = check_licences(stack)
        print()
        print(f"| portals | {PORTALS} (latency {LATENCY_MS:.0f} ms, {FAIL_RATE:.0%} of requests failing) |")
        print(
            f"| first run | {first_elapsed:.1f} s, {sum(first.values()) / first_elapsed:.0f} portals/s, {dict(first)} |"
        )
        print(f"| runs until none due | {len(runs)} ({', '.join(f'{e:.1f} s' for _, e, _ in runs)}) |")
        print(
            f"| AWS calls per portal checked | {sum(calls.values()) / max(checked, 1):.2f}: "
            + ", ".join(f"{name} {count / max(checked, 1):.2f}" for name, count in calls.most_common())
            + " |"
        )
        print(
            f"| refreshes | {sum(portal.calls.get('refresh', 0) for portal in fakes)} for {PORTALS} portals; "
            f"portals refreshed twice in one run: {twice} |"
        )
        print(f"| requests over 2/s to one portal | {sum(portal.calls.get('over_rate', 0) for portal in fakes)} |")
        print(f"| licences not what their portal says | {wrong} of {PORTALS} |")
        if twice or wrong:
            raise SystemExit(1)


def check_licences(stack: LocalStack) -> int:
    """How many installations' licence differs from what their portal's app.info says."""
    from billing_webhooks.data.toolkit import from_item

    wrong = 0
    for page in stack_dynamodb().get_paginator("scan").paginate(TableName="InstallationsTable"):
        for item in map(from_item, page["Items"]):
            fake = stack.bitrix24.portals.get(item["domain"])
            if item["member_id"] == samples.PORTAL_MEMBER_ID or fake is None:
                continue
            expected = (fake.status, fake.days, fake.payment_expired, "app.info")
            if (
                item.get("licence_status"),
                item.get("days"),
                item.get("payment_expired"),
                item.get("licence_source"),
            ) != expected:
                wrong += 1
    return wrong


if __name__ == "__main__":
    main()
