"""Every target `make help` lists runs, as a user types it: a target that breaks fails here. The
long ones run with a small count; `build`, `deploy` and `clean` run in test_deploy*.py, `test` is
this run itself."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta

import boto3
import pytest
import requests

from local import services
from local.template import ROOT
from tests.conftest import HOST_ENVIRONMENT

pytestmark = pytest.mark.slow
# How each listed target is exercised: here (the test's name), or in another test file.
ELSEWHERE = {
    "build": "test_deploy.py",
    "deploy": "test_deploy_rehearsal.py",
    "reattach": "test_deploy_rehearsal.py (after sam delete and a new deploy)",
    "clean": "test_deploy_rehearsal.py",
    "test": "this run",
    "check": "this run (make test's first step)",
    "lock": "test_locks.py",
    "simulate": "test_simulation.py (three small seeds)",
}
HERE = {
    "help",
    "setup",
    "dev",
    "records",
    "alerts",
    "replay",
    "replay-quarantine",
    "redrive-alerts",
    "rebuild-accounts",
    "load",
    "openapi",
    "validate",
    "lint",
    "bench",
    "bench-decoder",
    "bench-sync",
    "events",
}


def make(*arguments: str, env: dict[str, str] | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", *arguments],
        cwd=ROOT,
        env=env or HOST_ENVIRONMENT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _post_install(make_dev: dict, install: dict) -> requests.Response:
    """ONAPPINSTALL posted as Bitrix24 posts it: a PHP-style form."""
    from local.wire import php_form_encode

    return requests.post(
        f"{make_dev['api']}/bitrix24/app-install",
        data=php_form_encode(install),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=60,
    )


def test_make_help_lists_exactly_the_targets_the_suite_runs():
    result = make("help")
    assert result.returncode == 0
    listed = set(re.findall(r"^  make (\S+)", result.stdout, re.M))
    assert listed == HERE | set(ELSEWHERE), listed ^ (HERE | set(ELSEWHERE))


@pytest.fixture(scope="module")
def make_dev():
    """`make dev` on free ports, as a user starts it; stopped (SIGTERM, like Ctrl-C) at the end."""
    ports = {
        "DYNAMODB_LOCAL_PORT": services.free_port(),
        "MOTO_PORT": services.free_port(),
        "LOCAL_API_PORT": services.free_port(),
        "FAKE_BITRIX24_PORT": services.free_port(),
    }
    environment = {**HOST_ENVIRONMENT, **{name: str(port) for name, port in ports.items()}}
    process = subprocess.Popen(
        ["make", "--no-print-directory", "dev"],
        cwd=ROOT,
        env=environment,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    banner, deadline = [], time.monotonic() + 180
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        banner.append(line)
        if line.startswith("Serving"):
            break
    assert banner and banner[-1].startswith("Serving"), "".join(banner)[-3000:]
    # Read what it prints from now on, as a terminal would: a full pipe would stall its threads.
    printed: list[str] = []
    reader = threading.Thread(target=lambda: printed.extend(iter(process.stdout.readline, "")), daemon=True)
    reader.start()
    yield {
        "ports": ports,
        "banner": "".join(banner),
        "process": process,
        "api": f"http://127.0.0.1:{ports['LOCAL_API_PORT']}",
    }
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise AssertionError("make dev did not stop within 60 s of SIGTERM: " + "".join(printed)[-3000:]) from None
    reader.join(10)
    assert "Stopped." in "".join(printed), "".join(printed)[-3000:]


def test_make_dev_prints_the_sample_curl_lines_in_lifecycle_order(make_dev):
    paths = re.findall(r"curl -sS -X POST http://127\.0\.0\.1:\d+(/\S+)", make_dev["banner"].split("Try these")[0])
    assert paths[:3] == ["/bitrix24/app-install", "/bitrix24/app-update", "/bitrix24/app-payment"]
    assert paths[-1] == "/bitrix24/app-uninstall" and all(path.startswith("/billing/") for path in paths[3:-1])
    assert "TrimmedDataAccessException" not in make_dev["banner"]


def test_a_second_make_dev_on_taken_ports_names_the_port_and_the_variable(make_dev):
    environment = {**HOST_ENVIRONMENT, **{name: str(port) for name, port in make_dev["ports"].items()}}
    result = make("dev", env=environment, timeout=120)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"port {make_dev['ports']['DYNAMODB_LOCAL_PORT']} (DynamoDB Local) is taken" in result.stderr
    assert "DYNAMODB_LOCAL_PORT=<port> make dev" in result.stderr


def test_make_devs_fake_bitrix24_takes_control_requests_on_its_own_port(make_dev):
    fake = f"http://127.0.0.1:{make_dev['ports']['FAKE_BITRIX24_PORT']}/_portals/some-domain.bitrix24.com"
    assert f"curl -sS -X PUT {fake}" in make_dev["banner"]
    changed = requests.put(fake, json={"STATUS": "P", "PAYMENT_EXPIRED": "Y", "DAYS": -3}, timeout=10)
    assert changed.status_code == 200 and changed.json()["PAYMENT_EXPIRED"] == "Y"
    assert requests.get(fake, timeout=10).json()["DAYS"] == -3
    # The walk: the subscription ran out, a sync from the prompt, the portal reads expired.
    member_id = "a223c6b3710f85df22e9377d6c4f7553"
    environment = {
        name: value for name, value in HOST_ENVIRONMENT.items() if name not in ("DYNAMODB_LOCAL_PORT", "MOTO_PORT")
    }
    cli = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "billing-webhooks"), "--local", "portals", "sync", member_id],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # It answered, and the app is unpaid: exit status 4, for a script to tell from "could not check" (3).
    assert cli.returncode == 4 and "Synced: ok" in cli.stdout and "expired" in cli.stdout, cli.stdout + cli.stderr
    answer = requests.get(f"{make_dev['api']}/portals/{member_id}", timeout=10)
    licence = answer.json()["licence"]
    assert (licence["state"], licence["source"]) == ("expired", "app.info"), answer.text
    played = requests.get(fake, timeout=10).json()
    # make dev's first check of the sample portal, then this sync's.
    assert played["calls"]["app.info"] == 2 and played["access_token"] not in answer.text + cli.stdout
    # The sync decided the portal's entitlement and told the bus: expired three days before the
    # answer, its 3 days of grace are over (counted from the end, not from the answer).
    linked = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "billing-webhooks"), "links", "set", member_id, "504", "--local"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert linked.returncode == 0 and "licence_expired" in linked.stdout, linked.stdout + linked.stderr
    assert "in_grace" not in linked.stdout
    shown = requests.get(f"{make_dev['api']}/entitlements/{member_id}", timeout=10).json()
    assert shown["entitled"] is False and shown["account"]["account_id"] == 504, shown
    told = make("events", env=environment)
    # make dev's first check of the sample portal (paid), then the expiry: the entitlement twice, the
    # licence once. The link to an account nothing has named yet changed no verdict.
    assert told.returncode == 0 and "3 event(s) on local-events" in told.stdout, told.stdout + told.stderr
    assert told.stdout.count("EntitlementChanged") == 2 and told.stdout.count("LicenceChanged") == 1


def test_the_tools_find_the_running_make_dev_stack_whatever_its_ports(make_dev):
    event = json.loads((ROOT / "events" / "unpaid_invoice.json").read_text())
    posted = requests.post(
        f"{make_dev['api']}/billing/unpaid-invoice",
        data=event["body"],
        headers={"Authorization": "Bearer local-billing-token", "Content-Type": "application/json"},
        timeout=10,
    )
    assert posted.status_code == 200, posted.text
    environment = {
        name: value for name, value in HOST_ENVIRONMENT.items() if name not in ("DYNAMODB_LOCAL_PORT", "MOTO_PORT")
    }  # found through what make dev wrote
    records = make("records", env=environment)
    assert records.returncode == 0 and "UnPaidInvoice" in records.stdout, records.stderr
    deadline = time.monotonic() + 10
    while "1 alert(s)" not in (alerts := make("alerts", env=environment)).stdout and time.monotonic() < deadline:
        time.sleep(0.5)
    assert alerts.returncode == 0 and "1 alert(s)" in alerts.stdout, alerts.stdout + alerts.stderr
    for target in ("replay", "replay-quarantine", "redrive-alerts"):
        result = make(target, env=environment)
        assert result.returncode == 0 and "Traceback" not in result.stderr, (target, result.stderr[-2000:])
    rebuilt = make("rebuild-accounts", env=environment)
    assert rebuilt.returncode == 0 and "changed" in rebuilt.stdout, rebuilt.stdout + rebuilt.stderr
    cli = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "billing-webhooks"), "accounts", "show", "504", "--local", "--json"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0 and json.loads(cli.stdout)["account_id"] == 504, cli.stderr


def test_the_operators_lists_a_portals_story_and_the_quarantine_work_against_make_dev(make_dev):
    import secrets

    from local import seeds

    environment = {
        name: value for name, value in HOST_ENVIRONMENT.items() if name not in ("DYNAMODB_LOCAL_PORT", "MOTO_PORT")
    }

    def cli(*arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(ROOT / ".venv" / "bin" / "billing-webhooks"), *arguments, "--local"],
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )

    # An install no OAuth server vouched for (it carries no refresh token), from the fake's portal.
    fake = f"http://127.0.0.1:{make_dev['ports']['FAKE_BITRIX24_PORT']}"
    domain, member_id = "lists.bitrix24.es", secrets.token_hex(16)
    made = requests.put(
        f"{fake}/_portals/{domain}", json={"member_id": member_id, "STATUS": "T", "DAYS": 14}, timeout=10
    )
    assert made.status_code == 200, made.text
    pair = requests.post(f"{fake}/_portals/{domain}/users", json={"admin": True}, timeout=10).json()
    install = {
        "event": "ONAPPINSTALL",
        "data": {"VERSION": "1", "ACTIVE": "Y", "INSTALLED": "Y", "LANGUAGE_ID": "es"},
        "ts": str(int(time.time())),
        "auth": {
            "access_token": pair["AUTH_ID"],
            "domain": domain,
            "server_endpoint": "https://oauth.bitrix.info/rest/",
            "client_endpoint": f"https://{domain}/rest/",
            "member_id": member_id,
            "application_token": "b" * 32,
        },
    }
    posted = _post_install(make_dev, install)
    assert posted.status_code == 200, posted.text
    # A billing notification our model refuses: kept in quarantine.
    refused = requests.post(
        f"{make_dev['api']}/billing/new-payment",
        data=seeds.billing_seed_texts()["NewPayment"].replace('"amount": 2000', '"amount": "two thousand"'),
        headers={"Authorization": "Bearer local-billing-token", "Content-Type": "application/json"},
        timeout=10,
    )
    assert refused.status_code == 422, refused.text

    unvouched = cli("portals", "list", "--not-vouched")
    assert unvouched.returncode == 0 and member_id in unvouched.stdout and domain in unvouched.stdout, unvouched
    unreachable = cli("portals", "list", "--unreachable", "--json")
    assert unreachable.returncode == 0 and json.loads(unreachable.stdout)["portals"] == [], unreachable
    story = cli("portals", "story", member_id)
    assert story.returncode == 0 and "ONAPPINSTALL" in story.stdout and "installed" in story.stdout, story
    assert "Now: " in story.stdout and "Traceback" not in story.stderr
    listed = cli("quarantine", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [kept] = [item for item in json.loads(listed.stdout)["quarantine"] if item["route"] == "POST /billing/new-payment"]
    shown = cli("quarantine", "show", kept["quarantine_id"])
    assert shown.returncode == 0 and "details.amount" in shown.stdout and "two thousand" in shown.stdout, shown


def test_make_devs_clock_plays_a_licence_running_out_unpaid_as_a_person_would_with_curl(make_dev):
    """The walk docs/development.md gives, over HTTP alone: a portal paid for two more days
    installs the app; the clock moves ten days, a quarter day at a time. Last of this module's
    make dev tests: the clock only moves forward."""
    import secrets

    fake = f"http://127.0.0.1:{make_dev['ports']['FAKE_BITRIX24_PORT']}"
    domain, member_id = "clock-walk.bitrix24.de", secrets.token_hex(16)
    now = datetime.fromisoformat(requests.get(f"{fake}/_clock", timeout=10).json()["now"].replace("Z", "+00:00"))
    ends = now + timedelta(days=2)
    made = requests.put(
        f"{fake}/_portals/{domain}",
        json={"member_id": member_id, "STATUS": "P", "paid_until": ends.isoformat(), "application_token": "a" * 32},
        timeout=10,
    )
    assert made.status_code == 200, made.text
    pair = requests.post(f"{fake}/_portals/{domain}/users", json={"admin": True}, timeout=10).json()
    install = {
        "event": "ONAPPINSTALL",
        "event_handler_id": "12",
        "data": {"VERSION": "1", "ACTIVE": "Y", "INSTALLED": "Y", "LANGUAGE_ID": "en"},
        "ts": str(int(now.timestamp())),
        "auth": {
            "access_token": pair["AUTH_ID"],
            "expires_in": "3600",
            "scope": "crm",
            "domain": domain,
            "server_endpoint": "https://oauth.bitrix.info/rest/",
            "status": "S",
            "client_endpoint": f"https://{domain}/rest/",
            "member_id": member_id,
            "user_id": "1",
            "refresh_token": pair["REFRESH_ID"],
            "application_token": "a" * 32,
        },
    }
    posted = _post_install(make_dev, install)
    assert posted.status_code == 200, posted.text
    answers = []
    for _ in range(10 * 4):  # POST /_clock: a quarter day at a time, answered once the stack is quiet
        moved = requests.post(f"{fake}/_clock", json={"advance_seconds": 6 * 3600}, timeout=600)
        assert moved.status_code == 200, moved.text
        shown = requests.get(f"{make_dev['api']}/entitlements/{member_id}", timeout=10).json()
        answers.append((shown["entitled"], shown["reason"], shown.get("grace_until")))
    reasons = [answer[:2] for answer in answers]
    assert reasons[0] == (True, "paid") and reasons[-1] == (False, "licence_expired"), reasons
    grace = [answer for answer in answers if answer[1] == "licence_expired_in_grace"]
    # In grace from the end instant (known to DAYS' whole day), for the grace's 3 days, then not.
    grace_until = datetime.fromisoformat(grace[0][2].replace("Z", "+00:00"))
    assert timedelta(days=3) <= grace_until - ends <= timedelta(days=4), (grace_until, ends)
    order = [(True, "paid"), (True, "licence_expired_in_grace"), (False, "licence_expired")]
    assert set(reasons) <= set(order) and reasons == sorted(reasons, key=order.index), reasons
    sqs = boto3.client(
        "sqs",
        endpoint_url=f"http://127.0.0.1:{make_dev['ports']['MOTO_PORT']}",
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    url = sqs.get_queue_url(QueueName="local-events")["QueueUrl"]
    told, seen = [], set()
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30).get("Messages", []):
        for message in batch:
            event = json.loads(message["Body"])
            if event["id"] not in seen and event["detail-type"] == "EntitlementChanged":
                seen.add(event["id"])
                if event["detail"]["member_id"] == member_id:
                    told.append((event["detail"]["entitled"], event["detail"]["reason"]))
    # The install's verdict, then exactly two: in grace, then expired.
    assert told == [(True, "paid"), (True, "licence_expired_in_grace"), (False, "licence_expired")], told
    refreshes = requests.get(f"{fake}/_portals/{domain}", timeout=10).json()["refreshes_by_day"]
    assert refreshes and max(refreshes.values()) <= 1, refreshes


def test_the_tools_say_where_they_looked_when_no_make_dev_runs(tmp_path):
    port = services.free_port()
    environment = {**HOST_ENVIRONMENT, "DYNAMODB_LOCAL_PORT": str(port), "MOTO_PORT": str(services.free_port())}
    for target in ("records", "alerts"):
        result = make(target, env=environment)
        assert (
            result.returncode != 0 and f"127.0.0.1:{port}" in result.stderr and "DYNAMODB_LOCAL_PORT" in result.stderr
        )
        assert "Traceback" not in result.stderr
    cli = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "billing-webhooks"), "--local", "portals", "show", "m"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode != 0 and f"127.0.0.1:{port}" in cli.stderr and "Traceback" not in cli.stderr


def test_make_setup_validate_and_lint_pass():
    for target in ("setup", "validate", "lint"):
        result = make(target)
        assert result.returncode == 0, (target, (result.stdout + result.stderr)[-3000:])


def test_make_openapi_writes_the_committed_document_again():
    before = (ROOT / "openapi.json").read_text()
    result = make("openapi")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (ROOT / "openapi.json").read_text() == before


def test_make_load_and_the_benchmarks_run_with_a_small_count_and_print_their_figures():
    small = {
        **HOST_ENVIRONMENT,
        "LOAD_DELIVERIES": "40",
        "LOAD_CONCURRENCY": "4",
        "BENCH_DECODER_RUNS": "1",
        "BENCH_RUNS": "1",
        "BENCH_DELIVERIES": "5",
        "BENCH_VIEW_ROUNDS": "2",
        "BENCH_FUNCTIONS": "UnPaidInvoiceFunction",
        "BENCH_SYNC_PORTALS": "30",
    }
    load = make("load", env=small)
    assert load.returncode == 0 and "Traceback" not in load.stderr, (load.stdout + load.stderr)[-3000:]
    decoder = make("bench-decoder", env=small)
    assert decoder.returncode == 0 and "| form: `d[]=` appends |" in decoder.stdout, decoder.stderr[-2000:]
    synced = make("bench-sync", env=small)
    assert synced.returncode == 0 and "| licences not what their portal says | 0 of 30 |" in synced.stdout, (
        synced.stdout + synced.stderr
    )[-3000:]
    bench = make("bench", env=small)
    assert bench.returncode == 0, (bench.stdout + bench.stderr)[-3000:]
    assert "| UnPaidInvoiceFunction" in bench.stdout or "UnPaidInvoice" in bench.stdout
    assert "make bench took" in bench.stdout and "GET /accounts/{id}" in bench.stdout
    assert "GET /entitlements/{member_id}" in bench.stdout
    print(sys.version)  # noqa: T201 (the figures above are in the captured output)
