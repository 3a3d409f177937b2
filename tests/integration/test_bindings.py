"""Wired by itself: a confirmed install (or update) binds the portal's other lifecycle events to
this stack's own URLs, once; a bind that fails is kept, its access token sealed, and bound by
the replay."""

import json
import time
import uuid
from urllib.parse import parse_qsl

import pytest

from billing_webhooks.jobs import replay as billing_replay
from local import samples
from local.fake_bitrix24 import Portal
from local.replay import replay
from tests.integration.test_installations import (  # noqa: F401 (fixtures)
    ACCESS,
    DOMAIN,
    MEMBER,
    acme,
    deliver,
    installed_acme,
    lifecycle,
)
from tests.integration.test_rescue import rescue_queue  # noqa: F401 (fixture)

ROUTES = {
    "ONAPPPAYMENT": "/bitrix24/app-payment",
    "ONAPPUPDATE": "/bitrix24/app-update",
    "ONAPPUNINSTALL": "/bitrix24/app-uninstall",
}


def bound(portal: Portal) -> dict[str, str]:
    return {binding["event"]: binding["handler"] for binding in portal.bindings}


def fresh(kind: str, seconds: int = 3600, **auth: str) -> dict:
    """A lifecycle body whose access token is still valid for `seconds`."""
    return lifecycle(kind, expires=str(int(time.time()) + seconds), **auth)


def test_a_confirmed_install_binds_payment_update_and_uninstall_to_this_stacks_own_urls(
    api, table, installations, acme, stack
):
    status, answer = deliver(api, "app_install", fresh("app_install"))
    assert (status, answer["status"]) == (200, "stored")
    assert bound(acme) == {event: api.url + path for event, path in ROUTES.items()}
    # app.info confirms the app; user.admin, that an administrator set its token (docs/security.md).
    assert stack.bitrix24.methods_called(DOMAIN) == ["app.info", "user.admin", "event.get", "batch"]
    batch = stack.bitrix24.requests[-1]
    assert batch.auth == ACCESS and batch.form["halt"] == "0"  # the token in the body, not in the URL
    commands = {key: dict(parse_qsl(value.partition("?")[2])) for key, value in batch.form.items() if key != "halt"}
    assert commands["cmd[ONAPPPAYMENT]"] == {"event": "ONAPPPAYMENT", "handler": f"{api.url}/bitrix24/app-payment"}


def test_a_redelivered_install_or_a_reinstall_binds_nothing_twice(api, table, installations, acme, stack):
    body = fresh("app_install")
    assert deliver(api, "app_install", body)[0] == 200
    stack.bitrix24.requests.clear()
    status, answer = deliver(api, "app_install", body)
    assert (status, answer["status"]) == (200, "duplicate")
    assert deliver(api, "app_uninstall", lifecycle("app_uninstall"))[0] == 200
    assert deliver(api, "app_install", fresh("app_install", ts=1466441000))[0] == 200
    assert stack.bitrix24.methods_called(DOMAIN) == ["app.info", "event.get", "app.info", "event.get"]
    assert len(acme.bindings) == 3


def test_an_update_binds_again_what_the_update_removed(api, installed_acme, stack):
    installed_acme.bindings.clear()  # Bitrix24 drops an app's bindings when it is updated
    status, answer = deliver(api, "app_update", fresh("app_update", application_token="acme-application-token-2"))
    assert (status, answer["status"]) == (200, "stored")
    assert set(bound(installed_acme)) == set(ROUTES)


def test_a_refused_bind_keeps_the_install_and_its_replay_binds_with_the_sealed_token(
    api,
    table,
    installations,
    acme,
    stack,
    rescue_queue,  # noqa: F811
):
    acme.binds = "refuse"
    status, answer = deliver(api, "app_install", fresh("app_install"))
    assert status == 502 and answer["title"] == "Portal events not bound"
    assert installations.get(member_id=MEMBER)["status"] == "installed"  # the install itself stands
    [parcel] = rescue_queue.parcels()
    assert parcel["sealed_access_token"] and ACCESS not in json.dumps(parcel)
    assert parcel["sender"]["handlers"]["ONAPPPAYMENT"] == f"{api.url}/bitrix24/app-payment"

    acme.binds = "ok"
    assert replay() == {"replayed": 1, "refused": 0, "deferred": 0, "dead_lettered": 0}
    assert set(bound(acme)) == set(ROUTES) and rescue_queue.parcels() == []
    assert stack.bitrix24.requests[-1].auth == ACCESS  # unsealed for the portal, and only there


def test_a_replay_after_the_access_token_expired_gives_up_the_bind_and_drops_the_parcel(
    api,
    table,
    installations,
    acme,
    rescue_queue,  # noqa: F811
):
    acme.binds = "refuse"
    assert deliver(api, "app_install", fresh("app_install", seconds=1))[0] == 502
    time.sleep(1.5)
    acme.binds = "ok"
    assert replay() == {"replayed": 1, "refused": 0, "deferred": 0, "dead_lettered": 0}
    assert acme.bindings == [] and rescue_queue.parcels() == []
    assert installations.get(member_id=MEMBER)["status"] == "installed"


def test_an_install_parked_before_its_portal_answered_binds_this_stacks_urls_on_replay(
    api,
    table,
    installations,
    stack,
    rescue_queue,  # noqa: F811
    monkeypatch,
):
    monkeypatch.setenv("BITRIX24_PORTAL_TIMEOUT_SECONDS", "0.5")
    member, domain = f"late-{uuid.uuid4().hex[:8]}", f"late-{uuid.uuid4().hex[:8]}.bitrix24.com"
    late = stack.bitrix24.portals[domain] = Portal(
        ACCESS, samples.APP_CODE, member_id=member, refresh_token=f"{member}-refresh"
    )
    late.answer = "slow"  # the portal does not answer app.info in time: parked
    install = fresh(
        "app_install",
        domain=domain,
        client_endpoint=f"https://{domain}/rest/",
        member_id=member,
        application_token=f"{member}-application-token",
        refresh_token=f"{member}-refresh",
    )
    status, answer = deliver(api, "app_install", install)
    assert (status, answer["title"]) == (502, "Portal did not confirm yet")
    assert installations.get(member_id=member) is None
    late.answer = "ok"
    assert replay() == {"replayed": 1, "refused": 0, "deferred": 0, "dead_lettered": 0}
    assert installations.get(member_id=member)["status"] == "installed"
    # The replay knows where the install was called, so it binds this stack's URLs.
    assert bound(late) == {event: f"{api.url}{path}" for event, path in ROUTES.items()}
    assert rescue_queue.parcels() == []


def test_an_install_parked_longer_than_its_access_token_lived_is_vouched_for_and_bound_on_replay(
    api,
    table,
    installations,
    stack,
    rescue_queue,  # noqa: F811
):
    member, domain = f"late-{uuid.uuid4().hex[:8]}", f"late-{uuid.uuid4().hex[:8]}.bitrix24.com"
    late = stack.bitrix24.portals[domain] = Portal(
        ACCESS, samples.APP_CODE, member_id=member, refresh_token=f"{member}-refresh"
    )
    late.fail_rate = 1  # the portal answers app.info 503: parked, its refresh token kept
    install = fresh(
        "app_install",
        seconds=1,
        domain=domain,
        client_endpoint=f"https://{domain}/rest/",
        member_id=member,
        application_token=f"{member}-application-token",
        refresh_token=f"{member}-refresh",
    )
    assert deliver(api, "app_install", install)[0] == 502
    time.sleep(1.5)  # the event's access token ran out while the portal was down
    late.fail_rate = 0
    assert replay() == {"replayed": 1, "refused": 0, "deferred": 0, "dead_lettered": 0}
    record = installations.get(member_id=member)
    assert record["status"] == "installed" and record["vouched"] is True
    assert set(bound(late)) == set(ROUTES) and rescue_queue.parcels() == []
    assert stack.bitrix24.requests[-1].auth == late.access_token  # the fresh token the vouching brought


def test_the_replay_goes_on_past_a_portal_that_still_fails(
    api, table, installations, acme, stack, rescue_queue, monkeypatch
):  # noqa: F811
    monkeypatch.setattr(billing_replay, "PORTAL_RETRY_SECONDS", 0)  # back at once, not at the next run
    beta = stack.bitrix24.portals["beta.bitrix24.com"] = Portal(
        ACCESS, samples.APP_CODE, member_id="beta-member", refresh_token="beta-refresh-token"
    )
    acme.binds = beta.binds = "refuse"
    assert deliver(api, "app_install", fresh("app_install"))[0] == 502
    beta_install = fresh(
        "app_install",
        domain="beta.bitrix24.com",
        client_endpoint="https://beta.bitrix24.com/rest/",
        member_id="beta-member",
        application_token="beta-application-token",
        refresh_token="beta-refresh-token",
    )
    assert deliver(api, "app_install", beta_install)[0] == 502
    beta.binds = "ok"
    assert replay() == {
        "replayed": 1,
        "refused": 0,
        "deferred": 1,
        "dead_lettered": 0,
    }  # acme tried once, then the run ends
    assert set(bound(beta)) == set(ROUTES) and acme.bindings == []
    acme.binds = "ok"
    assert replay() == {"replayed": 1, "refused": 0, "deferred": 0, "dead_lettered": 0}
    assert set(bound(acme)) == set(ROUTES) and rescue_queue.parcels() == []


@pytest.mark.parametrize("failure", ["down", "refuse"])
def test_a_bind_failure_shows_in_a_metric(
    api,
    table,
    installations,
    acme,
    rescue_queue,
    capsys,  # noqa: F811
    failure,
):
    acme.binds = failure
    assert deliver(api, "app_install", fresh("app_install"))[0] == 502
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert any(document.get("BindFailed") == [1.0] for document in documents)


def test_a_delivery_is_parked_even_when_its_token_cannot_be_sealed(
    api,
    table,
    installations,
    acme,
    rescue_queue,  # noqa: F811
    monkeypatch,
):
    monkeypatch.setenv("PORTAL_TOKEN_KEY_ID", "alias/no-such-key")  # KMS refuses
    acme.binds = "refuse"
    assert deliver(api, "app_install", fresh("app_install"))[0] == 502
    [parcel] = rescue_queue.parcels()
    assert "sealed_access_token" not in parcel and ACCESS not in json.dumps(parcel)


def test_a_redirect_from_a_bind_call_is_not_followed(api, table, installations, acme, stack, rescue_queue):  # noqa: F811
    acme.binds = "redirect"
    status, answer = deliver(api, "app_install", fresh("app_install"))
    assert status == 502 and "HTTP 302" in answer["detail"]
    asked = {request.host for request in stack.bitrix24.requests}
    assert asked == {f"{DOMAIN}:443", "oauth.bitrix.info:443"}  # never the redirect's target
    assert stack.bitrix24.methods_called(DOMAIN) == ["app.info", "user.admin", "event.get"]
