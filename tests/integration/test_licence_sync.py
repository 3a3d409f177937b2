"""Licences that stay true when Bitrix24 says nothing (docs/licence-sync.md): the sample portal's
tokens kept sealed, its app.info asked by the licence sync, Bitrix24's answers handled by name,
played through the fake Bitrix24's control port as a person would."""

import json
import threading
import time

import boto3
import pytest
import requests

from local import samples
from local.fake_bitrix24 import Portal
from tests.conftest import Table

MEMBER = samples.PORTAL_MEMBER_ID


@pytest.fixture
def tokens(stack, dynamodb, installations) -> Table:
    """PortalTokensTable holding only the sample portal's tokens, as its install kept them."""
    table = Table(dynamodb, "PortalTokensTable", ("member_id",))
    table.clear()
    stack.keep_sample_tokens()
    return table


def play(stack, **changes) -> dict:
    answer = requests.put(
        f"http://127.0.0.1:{stack.bitrix24.port}/_portals/{samples.PORTAL_DOMAIN}", json=changes, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def played(stack) -> dict:
    return requests.get(f"http://127.0.0.1:{stack.bitrix24.port}/_portals/{samples.PORTAL_DOMAIN}", timeout=10).json()


_function: list = []


def licence_sync_function():
    """PortalSyncFunction's handler, loaded as Lambda loads it (once per test session)."""
    from local import template
    from local.server import LocalFunction

    if not _function:
        _function.append(LocalFunction(template.function("PortalSyncFunction")))
    return _function[0]


def sync(member_id: str = MEMBER) -> dict:
    """`{"member_ids": [...]}` to PortalSyncFunction, as `billing-webhooks portals sync` invokes it."""
    [outcome] = licence_sync_function().invoke({"member_ids": [member_id]})["portals"]
    return outcome


def portal(api) -> dict:
    answer = requests.get(f"{api.url}/portals/{MEMBER}", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_subscription_that_ran_out_reads_expired_from_app_info_after_a_sync(api, tokens, stack):
    play(stack, STATUS="P", PAYMENT_EXPIRED="Y", DAYS=-3)
    assert sync()["outcome"] == "ok"
    view = portal(api)
    licence = view["licence"]
    assert (licence["state"], licence["source"], licence["status"], licence["payment_expired"]) == (
        "expired",
        "app.info",
        "P",
        "Y",
    )
    assert view["sync"]["reachable"] is True and view["sync"]["last_outcome"] == "ok"
    assert played(stack)["calls"] == {"app.info": 1}  # the kept access token is valid: no refresh


def test_an_expired_access_token_is_refreshed_once_and_the_rotated_one_is_used_next(api, tokens, stack):
    before = tokens.get(member_id=MEMBER)
    play(stack, access_token_expired=True)
    assert sync()["outcome"] == "ok"
    rotated = stack.bitrix24.portals[samples.PORTAL_DOMAIN].access_token
    assert played(stack)["calls"] == {"app.info": 1, "refresh": 1}  # app.info refused, refresh, app.info
    after = tokens.get(member_id=MEMBER)
    assert after["sealed"] != before["sealed"] and after["version"] > before["version"]
    assert "refreshing_until" not in after
    assert sync()["outcome"] == "ok"
    assert played(stack)["calls"] == {"app.info": 2, "refresh": 1}
    asked = [request.auth for request in stack.bitrix24.requests if request.path.endswith("app.info")]
    assert asked[-2:] == [rotated, rotated]


def test_a_portal_that_answers_expired_token_to_a_token_we_thought_valid_is_refreshed_once(api, tokens, stack):
    play(stack, access_token_expired=True)
    # The kept token has not reached its own expiry: the portal's expired_token is what says so.
    assert tokens.get(member_id=MEMBER)["access_expires_at"] > time.time() + 600
    assert sync()["outcome"] == "ok"
    methods = stack.bitrix24.methods_called(samples.PORTAL_DOMAIN)
    assert methods == ["app.info", "app.info"] and played(stack)["calls"]["refresh"] == 1


def test_payment_required_from_the_oauth_server_marks_the_licence_unpaid_as_of_now(api, tokens, stack):
    play(stack, access_token_expired=True, oauth="payment_required")
    started = time.time()
    assert sync()["outcome"] == "unpaid"
    licence = portal(api)["licence"]
    assert (licence["state"], licence["source"]) == ("unpaid", "PAYMENT_REQUIRED")
    assert started - 2 <= _epoch(licence["since"]) <= time.time()
    kept = tokens.get(member_id=MEMBER)
    assert "refused" not in kept and "refreshing_until" not in kept  # good again once the app is paid
    play(stack, oauth="ok")
    assert sync()["outcome"] == "ok" and portal(api)["licence"]["source"] == "app.info"


def test_invalid_grant_makes_the_portal_unreachable_counted_and_out_of_the_schedule(
    api, tokens, stack, installations, capsys
):
    play(stack, access_token_expired=True, oauth="invalid_grant")
    outcome = sync()
    assert (outcome["outcome"], outcome["because"]) == ("unreachable", "invalid_grant")
    view = portal(api)
    assert view["sync"]["reachable"] is False and view["sync"]["unreachable_because"] == "invalid_grant"
    assert view["sync"]["next_check_at"] is None
    assert "next_check_at" not in installations.get(member_id=MEMBER)  # out of the sparse index
    assert tokens.get(member_id=MEMBER)["refused"] == "invalid_grant"
    assert sync()["outcome"] == "unreachable" and played(stack)["calls"]["refresh"] == 1  # never asked again
    assert '"PortalUnreachable"' in capsys.readouterr().out


def test_twenty_concurrent_syncs_of_a_portal_whose_token_expired_make_one_refresh(api, tokens, stack, dynamodb):
    # Its kept access token reached its expiry: every caller wants a new one at once.
    dynamodb.update_item(
        TableName="PortalTokensTable",
        Key={"member_id": {"S": MEMBER}},
        UpdateExpression="SET access_expires_at = :past",
        ExpressionAttributeValues={":past": {"N": "1"}},
    )
    play(stack, access_token_expired=True)
    outcomes, start = [], threading.Barrier(20)

    function = licence_sync_function()

    def one() -> None:  # as many containers would: no lock between them but DynamoDB's conditions
        from local.server import LambdaContext

        start.wait()
        outcomes.extend(
            portal["outcome"]
            for portal in function.handler({"member_ids": [MEMBER]}, LambdaContext("PortalSyncFunction"))["portals"]
        )

    threads = [threading.Thread(target=one) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert outcomes == ["ok"] * 20
    calls = played(stack)["calls"]
    assert calls["refresh"] == 1 and calls["app.info"] == 20 and "expired_token" not in json.dumps(calls)


def test_a_scheduled_run_checks_the_due_portals_once_and_schedules_the_next_check(api, tokens, stack, installations):
    from billing_webhooks.jobs.licence_sync_run import run_due

    assert installations.get(member_id=MEMBER)["next_check_at"] <= time.time()  # an install is due at once
    play(stack, STATUS="T", DAYS=2, PAYMENT_EXPIRED="N")
    assert run_due(lambda: 300_000) == {"ok": 1}
    due = installations.get(member_id=MEMBER)["next_check_at"]
    # A trial is checked next once, near its grace's end (2 days from the answer, then 3 days'
    # grace, less 2 hours): the check just made was this month's first refresh, and a second
    # just after the end would leave none for the grace's last check (2 in any 30 days).
    last_in_grace = time.time() + (2 + 3) * 86400 - 2 * 3600
    assert last_in_grace - 15 < due <= last_in_grace + 5
    assert run_due(lambda: 300_000) == {}
    assert played(stack)["calls"] == {"app.info": 1}


def test_a_run_whose_time_is_up_takes_no_portal_and_the_next_run_does(api, tokens, stack, installations):
    from billing_webhooks.jobs.licence_sync_run import run_due

    assert run_due(lambda: 10_000) == {"left for the next run": 1}
    assert played(stack)["calls"] == {}
    assert run_due(lambda: 300_000) == {"ok": 1}


def test_a_failing_portal_is_tried_again_sooner_backing_off(api, tokens, stack, installations, monkeypatch):
    monkeypatch.setenv("BITRIX24_PORTAL_TIMEOUT_SECONDS", "0.5")
    stack.bitrix24.portals[samples.PORTAL_DOMAIN].answer = "slow"
    first = sync()
    second = sync()
    assert (first["outcome"], first["failures"], second["failures"]) == ("failed", 1, 2)
    installation = installations.get(member_id=MEMBER)
    assert time.time() + 9 * 60 < installation["next_check_at"] <= time.time() + 10 * 60 + 5  # 5 min, then 10
    assert portal(api)["sync"]["failures"] == 2


def test_no_token_in_any_table_log_line_or_answer(api, tokens, stack, dynamodb, capsys):
    play(stack, access_token_expired=True)
    sync()
    play(stack, access_token_expired=True, oauth="invalid_grant")
    sync()
    fake = stack.bitrix24.portals[samples.PORTAL_DOMAIN]
    secrets = {
        fake.access_token,
        fake.refresh_token,
        *fake.earlier_tokens,
        samples.PORTAL_ACCESS_TOKEN,
        "q5f0idlro1tn4gvcxa2ojeo4hp16hwbs",
    }
    assert len(secrets) >= 4
    seen = [capsys.readouterr().out, json.dumps(portal(api)), requests.get(f"{api.url}/portals/{MEMBER}").text]
    for name in dynamodb.list_tables()["TableNames"]:
        seen += [  # binary attributes too (a quarantined body is kept as its bytes), read as text
            json.dumps(item, default=lambda value: bytes(value).decode("utf-8", "replace"))
            for page in dynamodb.get_paginator("scan").paginate(TableName=name)
            for item in page["Items"]
        ]
    sqs = boto3.client("sqs", endpoint_url=stack.endpoints["AWS_ENDPOINT_URL_SQS"])
    for url in sqs.list_queues().get("QueueUrls", []):  # parcels, alerts, failures: looked at, left
        seen += [
            message["Body"]
            for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
                "Messages", []
            )
        ]
    text = "\n".join(seen)
    assert [secret for secret in secrets if secret in text] == []


def _epoch(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_an_installs_rotated_tokens_are_kept_and_the_sync_refreshes_with_them(
    api, table, installations, stack, dynamodb
):
    from tests.integration import test_installations as acme_portal

    portal = Portal(
        acme_portal.ACCESS,
        samples.APP_CODE,
        status="T",
        days=14,
        member_id=acme_portal.MEMBER,
        refresh_token=acme_portal.REFRESH,
    )
    stack.bitrix24.portals[acme_portal.DOMAIN] = acme_portal.PORTALS[acme_portal.DOMAIN] = portal
    assert acme_portal.deliver(api, "app_install", acme_portal.lifecycle("app_install"))[0] == 200
    kept = Table(dynamodb, "PortalTokensTable", ("member_id",)).get(member_id=acme_portal.MEMBER)
    assert kept is not None and portal.refresh_token not in json.dumps(kept, default=str)
    assert sync(acme_portal.MEMBER)["outcome"] == "ok" and portal.calls["refresh"] == 1  # the install's own
    portal.access_token_expired = True
    assert sync(acme_portal.MEMBER)["outcome"] == "ok"
    # The fake takes only the refresh token it issued last: the install's rotated one was kept.
    assert portal.calls["refresh"] == 2 and portal.calls["app.info"] == 3


def _seal_the_former_way(stack, member_id: str, pair: dict) -> dict:
    """A pair as the token store sealed it before KMS Encrypt: a KMS data key, AES-256-GCM."""
    import base64
    import os

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    kms = boto3.client("kms", endpoint_url=stack.endpoints["AWS_ENDPOINT_URL_KMS"])
    context = {"member_id": member_id, "purpose": "portal-tokens"}
    key = kms.generate_data_key(KeyId="alias/TokenStoreKeyAlias", KeySpec="AES_256", EncryptionContext=context)
    nonce = os.urandom(12)
    associated = "|".join(f"{name}={value}" for name, value in sorted(context.items())).encode()
    sealed = nonce + AESGCM(key["Plaintext"]).encrypt(nonce, json.dumps(pair).encode(), associated)
    return {
        "data_key": base64.b64encode(key["CiphertextBlob"]).decode(),
        "sealed": base64.b64encode(sealed).decode(),
    }


def test_a_pair_sealed_the_former_way_still_opens_and_is_sealed_anew_at_its_next_write(api, tokens, stack, dynamodb):
    from billing_webhooks.data.toolkit import to_item

    fake = stack.bitrix24.portals[samples.PORTAL_DOMAIN]
    former = _seal_the_former_way(
        stack, MEMBER, {"access_token": fake.access_token, "refresh_token": fake.refresh_token}
    )
    dynamodb.update_item(
        TableName="PortalTokensTable",
        Key={"member_id": {"S": MEMBER}},
        UpdateExpression="SET data_key = :data_key, sealed = :sealed",
        ExpressionAttributeValues=to_item({":data_key": former["data_key"], ":sealed": former["sealed"]}),
    )
    assert sync()["outcome"] == "ok"  # opened the former way: app.info answered with its token
    play(stack, access_token_expired=True)
    assert sync()["outcome"] == "ok"  # refreshed with the former pair's refresh token, sealed anew
    after = tokens.get(member_id=MEMBER)
    assert "data_key" not in after
    assert sync()["outcome"] == "ok"


def test_a_sealed_pair_copied_onto_another_portals_item_does_not_open(api, tokens, stack, dynamodb):
    from billing_webhooks.domain import portal_tokens
    from billing_webhooks.errors import ServiceUnavailable

    kept = dynamodb.get_item(TableName="PortalTokensTable", Key={"member_id": {"S": MEMBER}})["Item"]
    dynamodb.put_item(TableName="PortalTokensTable", Item={**kept, "member_id": {"S": "another-portal"}})
    assert portal_tokens.access(MEMBER).token  # its own opens
    with pytest.raises(ServiceUnavailable):
        portal_tokens.access("another-portal")  # KMS binds the member_id: the copy does not


def test_a_second_payment_required_keeps_the_instant_of_the_first(api, tokens, stack):
    play(stack, access_token_expired=True, oauth="payment_required")
    assert sync()["outcome"] == "unpaid"
    first = portal(api)["licence"]["since"]
    time.sleep(1.1)  # a later second: a restamped licence would show
    assert sync()["outcome"] == "unpaid"
    view = portal(api)
    assert view["licence"]["since"] == first and view["sync"]["last_outcome"] == "unpaid"


def test_a_run_checks_the_due_portals_of_every_shard(api, stack, installations):
    from billing_webhooks.data.installations import SYNC_SHARDS
    from billing_webhooks.domain.schedule import sync_shard
    from billing_webhooks.jobs.licence_sync_run import run_due
    from local import play

    portals, shards = {}, set()
    while len(shards) < SYNC_SHARDS:  # installs until every shard holds one
        domain = f"shard-{len(portals)}-{time.monotonic_ns() % 10**6}.bitrix24.com"
        made = play.new_portal(stack.bitrix24, domain, paid_until=time.time() + 30 * 86400)
        if sync_shard(made.member_id) in shards:
            del stack.bitrix24.portals[domain]
            continue
        assert play.post_lifecycle(api.url, stack.bitrix24, domain) == 200
        portals[made.member_id], shards = domain, shards | {sync_shard(made.member_id)}
    run_due(lambda: 300_000)
    outcomes = {member_id: installations.get(member_id=member_id).get("last_check_outcome") for member_id in portals}
    assert outcomes == dict.fromkeys(portals, "ok")
